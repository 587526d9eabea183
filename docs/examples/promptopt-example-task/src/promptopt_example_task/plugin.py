"""The module the ``promptopt`` entry point names: it registers the task.

The task class is imported inside the hook, not at the top: ``promptopt --help`` and
``promptopt plugins`` import every plugin module, and the hook runs only when a command needs
components, so the task's code loads only then."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from promptopt import hookimpl

if TYPE_CHECKING:
    from promptopt.components import Task


@hookimpl
def register_tasks(register: Callable[[type[Task]], None]) -> None:
    from promptopt_example_task.task import CompareTask

    register(CompareTask)
