"""The module the ``promptopt`` entry point names: it registers the task."""

from __future__ import annotations

from collections.abc import Callable

from promptopt import hookimpl
from promptopt.components import Task

from promptopt_example_task.task import CompareTask


@hookimpl
def register_tasks(register: Callable[[type[Task]], None]) -> None:
    register(CompareTask)
