"""An example promptopt plugin: the ``example/compare`` task."""

from promptopt_example_task.task import CompareTask

__all__ = ["CompareTask"]
