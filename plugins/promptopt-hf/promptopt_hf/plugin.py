"""Entry-point module of promptopt-hf: registers the ``hf`` backend. Imports nothing heavy at
import time (the backend class loads when registered, torch when a model loads)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from promptopt import hookimpl

if TYPE_CHECKING:
    from promptopt.components import Backend


@hookimpl
def register_backends(register: Callable[[type[Backend]], None]) -> None:
    from promptopt_hf.backend import HFBackend

    register(HFBackend)
