"""Entry-point module of promptopt-hf: registers the ``hf`` backend (imports no torch)."""

from __future__ import annotations

from collections.abc import Callable

from promptopt import hookimpl
from promptopt.components import Backend
from promptopt_hf.backend import HFBackend


@hookimpl
def register_backends(register: Callable[[type[Backend]], None]) -> None:
    register(HFBackend)
