"""The core plugin: components that work with any backend (imported when registered, so that
``promptopt --help`` loads neither pydantic models nor anything heavier)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from promptopt import hookimpl

if TYPE_CHECKING:
    from promptopt.components import Reasoner


@hookimpl
def register_reasoners(register: Callable[[type[Reasoner]], None]) -> None:
    from promptopt.reasoners import ChatReasoner

    register(ChatReasoner)
