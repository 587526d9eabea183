"""Entry-point module: registers the ``openai`` backend. Imports no HTTP client (it loads when
a backend is built)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from promptopt import hookimpl

if TYPE_CHECKING:
    from promptopt.components import Backend


@hookimpl
def register_backends(register: Callable[[type[Backend]], None]) -> None:
    from promptopt_openai.backend import OpenAIBackend

    register(OpenAIBackend)
