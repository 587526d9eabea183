"""The module the ``promptopt`` entry point names: it registers the backend.

The backend class is imported inside the hook, not at the top: ``promptopt --help`` and
``promptopt plugins`` import every plugin module, and the hook runs only when a command needs
components. A backend that wraps torch or a C library keeps those imports inside its methods
for the same reason."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from promptopt import hookimpl

if TYPE_CHECKING:
    from promptopt.components import Backend


@hookimpl
def register_backends(register: Callable[[type[Backend]], None]) -> None:
    from promptopt_example_backend.backend import NgramBackend

    register(NgramBackend)
