"""promptopt task plugins: FOLIO, GSM8K and the 27 BIG-Bench Hard tasks (``bbh/<task>``)."""

from __future__ import annotations

from promptopt_tasks.base import BenchmarkTask, TaskOptions

__all__ = ["BenchmarkTask", "TaskOptions"]
