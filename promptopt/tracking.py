"""Experiment trackers: named by ``--tracker NAME`` (or ``PROMPTOPT_TRACKER``), registered by
plugins through the ``register_trackers`` hook, fed by the run lifecycle hooks. Nothing is
tracked unless the user names a tracker; a tracker that fails (its server down) is one warning
line, then left out: the optimization never stops for it."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from promptopt import hookimpl
from promptopt.errors import PromptoptError
from promptopt.records import RunInfo, StepRecord

HOOK = "register_trackers"
ENV = "PROMPTOPT_TRACKER"


class Tracker:
    """Base class of a tracker: override the calls you need (each is a no-op here). A study
    calls ``study_start`` before its first run and ``study_end`` after its report; its runs
    (executed in this process) call the run methods in between. ``close`` comes last, always;
    ``failed`` says the command ended by an error or an interrupt."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""

    def run_start(self, run: RunInfo) -> None:
        """A run starts (or resumes: ``run.resumed``)."""

    def step_end(self, run: RunInfo, record: StepRecord) -> None:
        """A step finished and is checkpointed."""

    def run_end(self, run: RunInfo, result: dict[str, Any]) -> None:
        """The run finished: ``result.json`` and ``report.html`` are written."""

    def study_start(self, root: Path, settings: dict[str, Any]) -> None:
        """A study starts in ``root`` with these settings (``study.json``)."""

    def study_end(self, root: Path, files: list[Path]) -> None:
        """The study wrote its report: ``files`` (report.md, report.json, plots, report.html)."""

    def close(self, failed: bool) -> None:
        """The command ends: release connections, end what is still open."""


def trackers() -> dict[str, type[Tracker]]:
    """Every registered tracker class, by name."""
    from promptopt.pluginmanager import registered_providers

    return registered_providers(HOOK, "name")


def find_tracker(name: str) -> type[Tracker]:
    """The tracker class called ``name``; a one-line error naming the ones there are."""
    found = trackers()
    if name not in found:
        known = ", ".join(found) or "none installed"
        raise PromptoptError(
            f"unknown tracker {name!r} (--tracker or {ENV})",
            hint=f"available: {known}; MLflow's comes with `pip install promptopt-mlflow`",
        )
    return found[name]


class ActiveTracker:
    """A tracker in use: registered as a plugin for the lifecycle hooks, every call guarded (a
    failure is one warning line on stderr, then the tracker is left out)."""

    def __init__(self, tracker: Tracker | None) -> None:
        self.tracker = tracker
        self.failed: BaseException | None = None

    def _call(self, method: str, **kwargs: Any) -> None:
        if self.tracker is None or (self.failed is not None and method != "close"):
            return  # after a failure only ``close`` is still called (to end what is open)
        try:
            getattr(self.tracker, method)(**kwargs)
        except Exception as exc:  # a tracker never stops the optimization
            if self.failed is not None:  # close after a failure: already warned
                return
            self.failed = exc
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            print(
                f"promptopt: warning: tracker {self.tracker.name!r} failed in {method} "
                f"({detail[:300]}); continuing without it",
                file=sys.stderr,
            )

    @hookimpl(trylast=True)
    def run_start(self, run: RunInfo) -> None:
        self._call("run_start", run=run)

    @hookimpl(trylast=True)
    def step_end(self, run: RunInfo, record: StepRecord) -> None:
        self._call("step_end", run=run, record=record)

    @hookimpl(trylast=True)  # after the core's run_end wrote report.html
    def run_end(self, run: RunInfo, result: dict[str, Any]) -> None:
        self._call("run_end", run=run, result=result)

    def study_start(self, root: Path, settings: dict[str, Any]) -> None:
        self._call("study_start", root=root, settings=settings)

    def study_end(self, root: Path, files: list[Path]) -> None:
        self._call("study_end", root=root, files=files)


@contextmanager
def tracking(name: str | None) -> Iterator[ActiveTracker]:
    """Track what runs inside with the tracker ``name`` (None or "": nothing is tracked; the
    yielded object then does nothing). The tracker is built first, so an unknown name or a
    missing library fails in one line before any model work."""
    from promptopt.pluginmanager import get_plugin_manager

    if not name:
        yield ActiveTracker(None)
        return
    tracker = find_tracker(name)()
    active = ActiveTracker(tracker)
    pm = get_plugin_manager()
    pm.register(active, name=f"tracker:{name}")
    failed = True
    try:
        yield active
        failed = False
    finally:
        pm.unregister(active)
        active._call("close", failed=failed)
