"""A study's settings, its grid of (method, task, seed) runs, and the study directory:
``DIR/study.json`` (the settings a rerun must match), ``DIR/runs/<method>/<task>/seed<k>``
(ordinary run directories) and ``DIR/study.log``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from promptopt.config import MAX_SEED
from promptopt.errors import PromptoptError
from promptopt.runlock import LOCK_NAME

STUDY_FILE = "study.json"
STUDY_KIND = "promptopt-study"
STUDY_VERSION = 2
RUNS = "runs"
LOG = "study.log"
#: Where `promptopt study --pilot` writes (dev rows only; a study may start there later).
PILOT = "pilot"
#: What a failed write in a study folder tells the user: nothing finished is lost.
STUDY_WRITE_HINT = "free space or make the study folder writable, then rerun the same command"

#: What the command-line flag of each setting is called (for error messages).
FLAGS: dict[str, str] = {
    "methods": "--methods",
    "tasks": "--tasks",
    "seeds": "--seeds",
    "model": "--model",
    "backend": "--backend",
    "optimizer_model": "--optimizer-model",
    "optimizer_backend": "--optimizer-backend",
    "options": "-o",
    "data_dir": "--data-dir",
    "eval_backend": "--eval-backend",
    "eval_model": "--eval-model",
    "eval_options": "--eval-option",
    "eval_max_new_tokens": "--eval-max-new-tokens",
    "test_limit": "--test-limit",
    "scorings": "--scoring",
    "transfer": "--transfer",
    "test_from": "--test-from",
    "baseline_prompts": "--baseline-prompt",
}


class StudySettings(BaseModel):
    """Everything that determines a study's runs and evaluations; saved in ``study.json``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    methods: list[str]
    tasks: list[str]
    seeds: list[int]
    model: str | None = None
    backend: str | None = None
    #: The prompt-writing model of methods that use one (GPO); other methods ignore it.
    optimizer_model: str | None = None
    optimizer_backend: str | None = None
    options: dict[str, Any] = {}
    data_dir: str | None = None
    eval_backend: str | None = None
    eval_model: str | None = None
    #: Options of the evaluation backend alone (``--eval-option weights=f32``).
    eval_options: dict[str, Any] = {}
    eval_max_new_tokens: int | None = None
    test_limit: int | None = None
    #: How test answers are read, each a full evaluation: ``generate`` (reason, then parse the
    #: answer) and/or ``logprob`` (the likeliest option): together they tell format failures
    #: from wrong reasoning.
    scorings: list[Literal["generate", "logprob"]] = ["generate"]
    transfer: list[str] = []
    #: The first row of every task's shared test set (None: after the largest train + dev any
    #: method of the grid uses).
    test_from: int | None = None
    #: The user's own prompts, evaluated as baselines next to the initial and empty prompts.
    baseline_prompts: list[str] = []

    def identity(self) -> dict[str, Any]:
        """What a study's results depend on: every setting except operational options
        (timeouts, retries, concurrency), with the seeds as a set (their order is free)."""
        from promptopt.options import without_operational

        values = self.model_dump()
        values["seeds"] = sorted(values["seeds"])
        values["options"] = without_operational(values["options"])
        values["eval_options"] = without_operational(values["eval_options"])
        return values

    def differences(self, other: StudySettings) -> list[str]:
        """``"--seeds: 0,1 (study) vs 0,1,2 (now)"`` for every setting that differs in a way
        that changes results."""
        mine, theirs = self.identity(), other.identity()
        return [
            f"{FLAGS.get(key, key)}: {_show(mine[key])} (study) vs {_show(theirs[key])} (now)"
            for key in mine
            if mine[key] != theirs[key]
        ]


def _show(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or "(none)"
    if isinstance(value, dict):
        return " ".join(f"{k}={json.dumps(v)}" for k, v in sorted(value.items())) or "(none)"
    return "(default)" if value is None else str(value)


@dataclass(frozen=True)
class RunSpec:
    """One (method, task, seed) cell of the grid and its run directory."""

    index: int
    method: str
    task: str
    seed: int
    path: Path

    @property
    def label(self) -> str:
        return f"{self.method} {self.task} seed {self.seed}"


def parse_names(text: str, flag: str) -> list[str]:
    """``"a,b"`` -> ``["a", "b"]`` (duplicates dropped, order kept); empty is an error."""
    names: list[str] = []
    for part in text.split(","):
        name = part.strip()
        if name and name not in names:
            names.append(name)
    if not names:
        raise PromptoptError(f"{flag} {text!r} names nothing", hint=f"e.g. {flag} a,b")
    return names


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` -> ``[0, 1, 2]``; anything but non-negative integers is a one-line error."""
    seeds: list[int] = []
    for part in text.split(","):
        raw = part.strip()
        if not raw:
            continue
        try:
            seed = int(raw)
        except ValueError:
            raise PromptoptError(
                f"--seeds {text!r}: {raw!r} is not an integer", hint="e.g. --seeds 0,1,2"
            ) from None
        if not 0 <= seed <= MAX_SEED:
            raise PromptoptError(
                f"--seeds {text!r}: {seed} is not between 0 and {MAX_SEED}",
                hint="e.g. --seeds 0,1,2",
            )
        if seed not in seeds:
            seeds.append(seed)
    if not seeds:
        raise PromptoptError(f"--seeds {text!r} names no seed", hint="e.g. --seeds 0,1,2")
    return seeds


def task_folder(task: str) -> Path:
    """Where a task's runs go under ``runs/<method>``: a registered name's slashes become
    folders (``bbh/navigate``); a data file is its stem, a hub dataset ``hf-ORG-NAME``."""
    from promptopt.rundir import is_data_reference, task_folder_name

    return Path(task_folder_name(task)) if is_data_reference(task) else Path(*task.split("/"))


def run_path(root: Path, method: str, task: str, seed: int) -> Path:
    """``ROOT/runs/<method>/<task>/seed<k>`` (the task as :func:`task_folder`)."""
    return root / RUNS / method / task_folder(task) / f"seed{seed}"


def check_task_folders(tasks: list[str]) -> None:
    """A one-line error when two tasks' runs would share a folder (data files of one name)."""
    folders: dict[Path, str] = {}
    for task in tasks:
        other = folders.setdefault(task_folder(task), task)
        if other != task:
            raise PromptoptError(
                f"--tasks {other!r} and {task!r} would share the run folder "
                f"runs/<method>/{task_folder(task)}",
                hint="rename one of the files",
            )


def plan_runs(settings: StudySettings, root: Path) -> list[RunSpec]:
    """Every (method, task, seed) of the study, methods outermost, seeds innermost."""
    check_task_folders(settings.tasks)
    specs: list[RunSpec] = []
    for method in settings.methods:
        for task in settings.tasks:
            for seed in settings.seeds:
                path = run_path(root, method, task, seed)
                specs.append(RunSpec(len(specs) + 1, method, task, seed, path))
    return specs


def open_study_dir(root: Path, settings: StudySettings) -> None:
    """Claim ``root`` for ``settings``: a new or empty folder gets ``study.json``; a folder
    holding this study is accepted; anything else (other files, another study's settings,
    a damaged ``study.json``) is a one-line error before any model work."""
    marker = root / STUDY_FILE
    if root.exists() and not root.is_dir():
        raise PromptoptError(f"--out {str(root)!r} is a file", hint="pass a study directory")
    if marker.is_file():
        stored = read_settings(root)
        differences = stored.differences(settings)
        if differences:
            raise PromptoptError(
                f"study {str(root)!r} was started with other settings: {'; '.join(differences)}",
                hint="rerun with the study's settings (see its study.json) or pass a new --out",
            )
        return
    if root.is_dir() and any(p.name not in (LOCK_NAME, PILOT) for p in root.iterdir()):
        raise PromptoptError(
            f"--out {str(root)!r} holds files but no {STUDY_FILE}, so it is not a study",
            hint="pass a new or empty directory, or the directory of an earlier study",
        )
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PromptoptError(
            f"study directory {str(root)!r} cannot be created ({exc.strerror})",
            hint="pass a writable --out",
        ) from exc
    from promptopt.studies.record import write_study_file

    write_study_file(root, settings)


def read_settings(root: Path) -> StudySettings:
    """The settings in ``ROOT/study.json`` (see :func:`promptopt.studies.record.read_study_file`):
    a one-line error when it is not a study file, of another version, or edited by hand."""
    from promptopt.studies.record import read_study_file

    return read_study_file(root)
