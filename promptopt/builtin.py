"""The core plugin: components that work with any backend (imported when registered, so that
``promptopt --help`` loads neither pydantic models nor anything heavier)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from promptopt import hookimpl

if TYPE_CHECKING:
    from promptopt.components import Reasoner
    from promptopt.metrics import Metric


@hookimpl
def register_reasoners(register: Callable[[type[Reasoner]], None]) -> None:
    from promptopt.reasoners import ChatReasoner

    register(ChatReasoner)


@hookimpl
def register_metrics(register: Callable[[Metric], None]) -> None:
    from promptopt.metrics import BUILTIN_METRICS

    for metric in BUILTIN_METRICS:
        register(metric)
