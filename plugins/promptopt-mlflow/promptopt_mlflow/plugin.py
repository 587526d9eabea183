"""The plugin module named by the ``promptopt`` entry point: registers the ``mlflow`` tracker
(MLflow itself is imported only when a user names it). A promptopt core without trackers gets
no hook from it, so installing this plugin never breaks one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from promptopt import hookimpl

try:
    from promptopt.tracking import Tracker  # noqa: F401  (the core has trackers)
except ImportError:  # pragma: no cover - an older core
    HAS_TRACKERS = False
else:
    HAS_TRACKERS = True

if HAS_TRACKERS:

    @hookimpl
    def register_trackers(register: Callable[[type[Any]], None]) -> None:
        from promptopt_mlflow.tracker import MlflowTracker

        register(MlflowTracker)
