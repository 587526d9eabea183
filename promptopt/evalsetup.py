"""What an evaluation needs before any model runs: the split and scoring mode checked, the task
and backend built from routed options, a run directory's prompt, task and layout read, and the
example limit applied. Shared by the Python API, ``promptopt eval`` and ``promptopt transfer``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from promptopt.errors import PromptoptError

if TYPE_CHECKING:
    from promptopt.components import Backend, Task
    from promptopt.evaluation import Scoring
    from promptopt.types import Split


def prompt_from_run(run_dir: Path, which: str = "best_prompt") -> str:
    """The prompt a finished run chose (``best_prompt``) or started from (``initial_prompt``)."""
    result = run_dir / "result.json"
    if not result.is_file():
        raise PromptoptError(
            f"{str(run_dir)!r} has no result.json",
            hint="pass a finished run directory, or finish it with `promptopt run --resume`",
        )
    from promptopt.rundir import read_json_object

    data = read_json_object(result, hint="pass a run directory promptopt wrote")
    if which not in data:
        raise PromptoptError(
            f"{str(result)!r} has no {which!r}", hint="was it written by promptopt?"
        )
    return str(data[which])


def separator_from_run(run_dir: Path) -> str | None:
    """How a run joined its prompts to the question (``prompt_separator`` in ``result.json``,
    e.g. GPO's new line); None: the task's default layout."""
    from promptopt.rundir import read_json_object

    data = read_json_object(run_dir / "result.json", hint="pass a run directory promptopt wrote")
    separator = data.get("prompt_separator")
    return separator if isinstance(separator, str) else None


def task_from_run(run_dir: Path) -> str | None:
    """The task a run optimized for, from its ``config.json`` (None when unreadable)."""
    from promptopt.rundir import CONFIG, read_json_object

    if not (run_dir / CONFIG).is_file():
        return None
    task = read_json_object(run_dir / CONFIG, hint="pass --task").get("task")
    return str(task) if task else None


def task_settings_from_run(run_dir: Path, task: str) -> tuple[dict[str, Any], str | None]:
    """The task options a run set (by ``-o`` or its method; ``{"task.question": ...}``) and its
    data folder, so that evaluating its prompt on ``task`` (the run's own) reads the same data
    the same way. Nothing when the run's configuration is unreadable or names another task."""
    from promptopt.cli.nextstep import REPEATED_SOURCES
    from promptopt.config import RunConfig
    from promptopt.rundir import CONFIG, read_json_object

    if not (run_dir / CONFIG).is_file():
        return {}, None
    try:
        config = RunConfig.model_validate(read_json_object(run_dir / CONFIG, hint="pass --task"))
    except (PromptoptError, ValueError):
        return {}, None
    if config.task != task:
        return {}, None
    from promptopt.assembly import plan_run
    from promptopt.registry import get_registry

    try:
        plan = plan_run(config, get_registry())
    except PromptoptError:
        return {}, config.data_dir
    options = {
        f"task.{key}": setting.value
        for key, setting in plan.settings.get("task", {}).items()
        if setting.source in REPEATED_SOURCES
    }
    return options, config.data_dir


def with_run_task_settings(
    run: Path, task: str, options: dict[str, Any], data_dir: str | None
) -> tuple[dict[str, Any], str | None]:
    """``options`` and ``data_dir`` completed with what the run set for its task (a data
    file's ``question``/``answer`` columns, split sizes, its data folder), so ``eval --run DIR``
    reads the test split as the run did; the command line wins, and a stderr line says what
    was taken from the run."""
    run_options, run_data_dir = task_settings_from_run(run, task)
    given = {key.removeprefix("task.") for key in options}
    taken = {k: v for k, v in run_options.items() if k.removeprefix("task.") not in given}
    if taken:
        shown = ", ".join(f"{key}={value}" for key, value in taken.items())
        print(f"promptopt: with the run's task options: {shown}", file=sys.stderr)
    if data_dir is None and run_data_dir is not None:
        data_dir = run_data_dir
    return {**taken, **options}, data_dir


def check_split_and_scoring(split: str, scoring: str) -> tuple[Split, Scoring]:
    """The split and the scoring mode these name; a one-line error for a split or scoring
    mode that does not exist."""
    from promptopt.evaluation import is_scoring
    from promptopt.types import is_split

    if not is_split(split):
        raise PromptoptError(f"unknown split {split!r}", hint="use train, dev or test")
    if not is_scoring(scoring):
        raise PromptoptError(f"unknown scoring {scoring!r}", hint="use generate or logprob")
    return split, scoring


def prompt_text(prompt: str) -> str:
    """The text ``--prompt`` evaluates: a blank one is the empty prompt ``""`` (the bare
    question), exactly what a study scores as its empty-prompt baseline."""
    return prompt if prompt.strip() else ""


def check_run_dir(run_dir: Path, flag: str = "--run") -> None:
    """A one-line error unless ``run_dir`` is a folder that ``promptopt run`` wrote (``flag``
    names where it came from)."""
    from promptopt.rundir import CONFIG, RESULT

    fix = (
        "pass a folder `promptopt run` wrote (runs/<method>-<task>-<time>), or evaluate a text "
        "with --prompt TEXT --task NAME"
    )
    if not run_dir.is_dir():
        what = "is not a folder" if run_dir.exists() else "does not exist"
        raise PromptoptError(f"{flag} {str(run_dir)!r} {what}", hint=fix)
    if not (run_dir / CONFIG).is_file() and not (run_dir / RESULT).is_file():
        raise PromptoptError(
            f"{flag} {str(run_dir)!r} holds no promptopt run (no {CONFIG} or {RESULT})", hint=fix
        )


def apply_limit(examples: list[Any], limit: int | None, *, split: str, task: str) -> list[Any]:
    """The first ``limit`` examples; a ``limit`` above the split's size says so on stderr (one
    line) instead of clamping silently."""
    if limit is None:
        return examples
    if limit > len(examples):
        print(
            f"promptopt: --limit {limit} is more than the {len(examples)} examples of the "
            f"{split} split of {task}; evaluating all {len(examples)}",
            file=sys.stderr,
        )
    return examples[:limit]


def build_task_and_backend(
    task: str,
    backend: str,
    model: str | None,
    options: dict[str, Any],
    run_level: dict[str, Any] | None = None,
    *,
    split: Split | None = None,
) -> tuple[Task, Backend]:
    """Resolve and construct a task and a backend, their ``-o`` options routed as a run's
    (``backend.n_ctx=2048``; a bare key declared by both is an error asking for a scope).
    With ``split``, its examples load (and :func:`task_note` is printed) before the model
    loads, so bad data fails fast."""
    from promptopt.options import build_command_options
    from promptopt.registry import get_registry

    registry = get_registry()
    task_cls = registry.task(task)
    backend_cls = registry.backend(backend)
    built = build_command_options({"task": task_cls, "backend": backend_cls}, options, run_level)
    task_obj = task_cls(built["task"])
    if split is not None:
        task_obj.examples(split)
        note = task_note(task_obj)
        if note:
            print(note, file=sys.stderr)
    return task_obj, backend_cls(model, built["backend"])


def task_note(task: Task) -> str | None:
    """One stderr line with what :meth:`~promptopt.components.Task.describe` says about the
    loaded data (a data file's columns and detected answer type), or None when nothing."""
    details = task.describe()
    if not details:
        return None
    shown = "; ".join(f"{key.replace('_', ' ')}: {_plain(value)}" for key, value in details.items())
    return f"promptopt: task {task.name}: {shown}"


def _plain(value: Any) -> str:
    """A detail value as short text: lists comma-joined, dicts as ``key value`` pairs."""
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    return str(value)
