"""Run a study's grid: each (method, task, seed) is an ordinary run directory, skipped when
finished (``result.json``), resumed when started (``config.json``) and started when missing.
The run itself goes through the same in-process entry point as ``promptopt run``."""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from promptopt.config import RunConfig
from promptopt.errors import PromptoptError
from promptopt.options import for_method
from promptopt.runs import RunWork
from promptopt.studies.plan import LOG, RunSpec, StudySettings


class StudyLog:
    """Progress lines of a study, on stderr and appended to ``DIR/study.log``."""

    def __init__(self, root: Path, *, echo: bool = True) -> None:
        self.path = root / LOG
        self.echo = echo

    def __call__(self, message: str) -> None:
        """Write one line, time-stamped in the log file (URLs with credentials redacted)."""
        from promptopt.urls import redact_text

        message = redact_text(message)
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


#: RunConfig fields a study sets; ``runtime`` is what a run resolved and is not compared.
COMPARED_FIELDS = (
    "method",
    "task",
    "backend",
    "model",
    "optimizer_backend",
    "optimizer_model",
    "seed",
    "data_dir",
    "options",
    "components",
)


def expected_config(spec: RunSpec, settings: StudySettings) -> RunConfig:
    """The run configuration the study gives one cell: what a started run is resumed with."""
    from promptopt.config import make_run_config

    return make_run_config({}, run_config_values(spec, settings))


def check_run_config(spec: RunSpec, config: dict[str, Any], settings: StudySettings) -> None:
    """A started or finished run must be exactly the cell the study expects: the same method,
    task, seed, models, backends, data and options. A folder that was moved, edited or planted
    (e.g. naming another model folder with ``trust_remote_code``) is refused before anything
    of it is used, so a study folder from elsewhere never decides what code runs."""
    from pydantic import ValidationError

    from promptopt.options import without_operational

    try:
        stored = RunConfig(**config).model_dump()
    except (TypeError, ValidationError):
        raise PromptoptError(
            f"run {str(spec.path)!r} has a config.json promptopt did not write",
            hint="move that folder away; the study then starts the run afresh",
        ) from None
    expected = expected_config(spec, settings).model_dump()
    for key in COMPARED_FIELDS:
        want, found = expected[key], stored[key]
        if key == "options":
            want, found = without_operational(want), without_operational(found)
            names = sorted(set(want) | set(found))
            differing = [k for k in names if found.get(k, _MISSING) != want.get(k, _MISSING)]
            if differing:
                name = differing[0]
                _refuse(spec, f"option {name}", found.get(name, _MISSING), want.get(name, _MISSING))
        elif found != want:
            _refuse(spec, key, found, want)
    check_data(spec, stored["task_identity"])


def check_data(spec: RunSpec, recorded: dict[str, Any]) -> None:
    """The run's task data must be what the run was made on (``Task.identity``: an edited data
    file is a new hash), so a study never reports a run of other data as this one."""
    from promptopt.registry import get_registry
    from promptopt.runs import check_task_identity

    check_task_identity(
        spec.task,
        recorded,
        get_registry().task(spec.task).identity(),
        hint=f"restore the data, or move {str(spec.path)!r} away; the study then starts the "
        "run afresh",
    )


class _Missing:
    def __repr__(self) -> str:
        return "(nothing)"


_MISSING: Any = _Missing()


def _show(value: Any) -> str:
    return "(default)" if value is None else repr(value)


def _refuse(spec: RunSpec, key: str, found: Any, want: Any) -> None:
    raise PromptoptError(
        f"run {str(spec.path)!r} has {key}={_show(found)}, but the study expects {_show(want)}",
        hint="move that folder away; the study then starts the run afresh",
    )


def check_existing_runs(specs: Sequence[RunSpec], settings: StudySettings) -> None:
    """Every started or finished run folder of the grid is the study's own cell (see
    :func:`check_run_config`), checked before any run is touched."""
    from promptopt.rundir import RunDir

    for spec in specs:
        if run_state(spec.path) != "missing":
            check_run_config(spec, RunDir(spec.path).read_config(), settings)


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
        "options": for_method(settings.options, spec.method),
        "components": {},
    }


def ensure_run(
    spec: RunSpec, settings: StudySettings, *, progress: bool, work: RunWork | None = None
) -> bool:
    """Finish one cell: skip it when finished, resume it when started, else start it.
    True when model work was done (the run was started or resumed); ``work`` receives the
    models it loaded and the tokens they generated."""
    from promptopt.rundir import RunDir
    from promptopt.runs import resume_run, start_run

    state = run_state(spec.path)
    if state == "finished":
        check_run_config(spec, RunDir(spec.path).read_config(), settings)
        return False
    config = expected_config(spec, settings)
    if state == "started":
        run_dir = RunDir.open(spec.path)
        check_run_config(spec, run_dir.read_config(), settings)
        run_dir.read_checkpoint()  # an unreadable checkpoint fails now, before a model loads
        # resumed with the study's own configuration, never with what the folder says
        resume_run(run_dir, config, progress=progress, work=work)
        return True
    start_run(config, out=spec.path, progress=progress, work=work)
    return True


def in_study(exc: PromptoptError) -> PromptoptError:
    """An error of one of a study's runs, with advice that fits a study: the study command
    resumes its runs, so ``promptopt run --resume DIR`` becomes "rerun the same command"."""
    if not exc.hint or "promptopt run --resume" not in exc.hint:
        return exc
    head = exc.hint.split("`promptopt run --resume", 1)[0].rstrip()
    hint = re.sub(r"[,;:]?\s*(then)?$", "", head)
    return PromptoptError(exc.message, hint=f"{hint}, then rerun the same study command")


def run_grid(
    specs: Sequence[RunSpec],
    settings: StudySettings,
    log: StudyLog,
    *,
    progress: bool,
    work: RunWork | None = None,
) -> int:
    """Finish every cell in order, logging ``run 3/8: greater bbh/navigate seed 1``; returns
    how many runs did model work (``work`` adds up their models and tokens). An interruption
    is logged and re-raised."""
    worked = 0
    total = len(specs)
    for spec in specs:
        state = run_state(spec.path)
        action = {"finished": "done, skipped", "started": "resuming", "missing": "starting"}
        log(f"run {spec.index}/{total}: {spec.label} ({action[state]})")
        try:
            worked += ensure_run(spec, settings, progress=progress, work=work)
        except PromptoptError as exc:
            raise in_study(exc) from None
        except KeyboardInterrupt:
            log(f"interrupted in run {spec.index}/{total}; rerun the same command to continue")
            raise
    return worked
