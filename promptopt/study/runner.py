"""Run a study's grid: each (method, task, seed) is an ordinary run directory, skipped when
finished (``result.json``), resumed when started (``config.json``) and started when missing.
The run itself goes through the same in-process entry point as ``promptopt run``."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from promptopt.errors import PromptoptError
from promptopt.study.plan import LOG, RunSpec, StudySettings


class StudyLog:
    """Progress lines of a study, on stderr and appended to ``DIR/study.log``."""

    def __init__(self, root: Path, *, echo: bool = True) -> None:
        self.path = root / LOG
        self.echo = echo

    def __call__(self, message: str) -> None:
        """Write one line, time-stamped in the log file."""
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(f"{stamp} {message}\n")
        if self.echo:
            print(f"study: {message}", file=sys.stderr, flush=True)


def run_state(path: Path) -> str:
    """``finished`` (result.json), ``started`` (config.json) or ``missing``."""
    if (path / "result.json").is_file():
        return "finished"
    if (path / "config.json").is_file():
        return "started"
    return "missing"


def check_run_config(spec: RunSpec, config: dict[str, Any], settings: StudySettings) -> None:
    """A started or finished run must be the cell the study expects (nobody moved folders):
    the same method, task and seed, and every setting the study gave (a run may record more,
    e.g. resolved defaults)."""
    given = {"backend": settings.backend, "model": settings.model, "data_dir": settings.data_dir}
    given.update(optimizer_values(settings, spec.method))
    expected: dict[str, Any] = {"method": spec.method, "task": spec.task, "seed": spec.seed}
    expected.update({key: value for key, value in given.items() if value is not None})
    found = {key: config.get(key) for key in expected}
    options = config.get("options") if isinstance(config.get("options"), dict) else {}
    for key, value in method_options(dict(settings.options), spec.method).items():
        expected[f"option {key}"] = value
        found[f"option {key}"] = options.get(key) if options else None
    for key, value in expected.items():
        if found[key] != value:
            raise PromptoptError(
                f"run {str(spec.path)!r} has {key}={found[key]!r}, but the study expects {value!r}",
                hint="move that folder away; the study then starts the run afresh",
            )


def method_options(options: dict[str, Any], method: str) -> dict[str, Any]:
    """The study's ``-o`` options for one method's runs: unprefixed keys apply to every method,
    ``METHOD:key`` keys (``-o gpo:steps=4``) only to that method's runs."""
    mine: dict[str, Any] = {}
    for key, value in options.items():
        owner, colon, rest = key.partition(":")
        if not colon:
            mine.setdefault(key, value)
        elif owner == method:
            mine[rest] = value
    return mine


def optimizer_values(settings: StudySettings, method: str) -> dict[str, Any]:
    """``--optimizer-model``/``--optimizer-backend`` for a method that writes prompts with a
    second model; nothing for the others."""
    from promptopt.registry import get_registry

    if not getattr(get_registry().get("method", method), "uses_optimizer", False):
        return {}
    values = {
        "optimizer_model": settings.optimizer_model,
        "optimizer_backend": settings.optimizer_backend,
    }
    return {key: value for key, value in values.items() if value is not None}


def run_config_values(spec: RunSpec, settings: StudySettings) -> dict[str, Any]:
    """The ``promptopt run`` values of one cell (what ``make_run_config`` receives)."""
    return {
        "method": spec.method,
        "task": spec.task,
        "model": settings.model,
        "backend": settings.backend,
        **optimizer_values(settings, spec.method),
        "seed": spec.seed,
        "data_dir": settings.data_dir,
        "options": method_options(dict(settings.options), spec.method),
        "components": {},
    }


def ensure_run(spec: RunSpec, settings: StudySettings, *, progress: bool) -> bool:
    """Finish one cell: skip it when finished, resume it when started, else start it.
    True when model work was done (the run was started or resumed)."""
    from promptopt.cli.run import execute
    from promptopt.config import make_run_config
    from promptopt.rundir import RunDir

    state = run_state(spec.path)
    if state == "finished":
        check_run_config(spec, RunDir(spec.path).read_config(), settings)
        return False
    if state == "started":
        run_dir = RunDir.open(spec.path)
        stored = run_dir.read_config()
        check_run_config(spec, stored, settings)
        run_dir.read_checkpoint()  # an unreadable checkpoint fails now, before a model loads
        execute(make_run_config(stored, {}), out=None, resume_dir=run_dir, progress=progress)
        return True
    config = make_run_config({}, run_config_values(spec, settings))
    execute(config, out=spec.path, resume_dir=None, progress=progress)
    return True


def run_grid(
    specs: Sequence[RunSpec], settings: StudySettings, log: StudyLog, *, progress: bool
) -> int:
    """Finish every cell in order, logging ``run 3/8: greater bbh/navigate seed 1``; returns
    how many runs did model work. An interruption is logged and re-raised."""
    worked = 0
    total = len(specs)
    for spec in specs:
        state = run_state(spec.path)
        action = {"finished": "done, skipped", "started": "resuming", "missing": "starting"}
        log(f"run {spec.index}/{total}: {spec.label} ({action[state]})")
        try:
            worked += ensure_run(spec, settings, progress=progress)
        except KeyboardInterrupt:
            log(f"interrupted in run {spec.index}/{total}; rerun the same command to continue")
            raise
    return worked
