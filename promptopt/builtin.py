"""The core plugin: components that work with any backend (imported when registered, so that
``promptopt --help`` loads neither pydantic models nor anything heavier)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from promptopt import hookimpl

if TYPE_CHECKING:
    from promptopt.components import Reasoner
    from promptopt.metrics import Metric
    from promptopt.records import RunInfo


@hookimpl
def register_reasoners(register: Callable[[type[Reasoner]], None]) -> None:
    from promptopt.reasoners import ChatReasoner

    register(ChatReasoner)


@hookimpl
def register_metrics(register: Callable[[Metric], None]) -> None:
    from promptopt.metrics import BUILTIN_METRICS

    for metric in BUILTIN_METRICS:
        register(metric)


@hookimpl(tryfirst=True)
def run_end(run: RunInfo, result: dict[str, Any]) -> None:
    """Write the run's ``report.html`` once ``result.json`` is there (first, so that trackers
    called after it find the page); a failure is one warning line."""
    from promptopt.htmlreport.runpage import write_run_report

    write_run_report(run.run_dir)
