"""``promptopt eval``: the score of a prompt on a task split (its accuracy, for right-or-wrong
metrics), with any backend."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from promptopt.errors import PromptoptError

if TYPE_CHECKING:
    from promptopt.components import Backend, Task
    from promptopt.evaluation import Scoring
    from promptopt.types import Split


def register(app: typer.Typer) -> None:
    app.command(name="eval", short_help="Evaluate a prompt on a task with any backend.")(
        eval_command
    )


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


def eval_command(
    task: Annotated[
        str | None,
        typer.Option(
            help="Task name (bbh/boolean_expressions), data file (FILE.csv) or hf:ORG/NAME "
            "(default with --run: its task)."
        ),
    ] = None,
    prompt: Annotated[
        str | None,
        typer.Option(help='The prompt text to evaluate ("": the empty prompt, the bare question).'),
    ] = None,
    run: Annotated[Path | None, typer.Option(help="Evaluate the best prompt of this run.")] = None,
    backend: Annotated[str, typer.Option(help="Model backend: hf, llamacpp, openai, ...")] = "hf",
    model: Annotated[
        str | None,
        typer.Option(
            help="A name from `promptopt models` (default smollm2), a folder, GGUF file, hub id "
            "or server URL."
        ),
    ] = None,
    split: Annotated[str, typer.Option(help="train, dev or test.")] = "test",
    limit: Annotated[int | None, typer.Option(min=1, help="Evaluate the first N examples.")] = None,
    scoring: Annotated[
        str, typer.Option(help="generate (parse) or logprob (options).")
    ] = "generate",
    max_new_tokens: Annotated[int, typer.Option(min=1, help="Reasoning length limit.")] = 512,
    data_dir: Annotated[
        str | None, typer.Option(metavar="DIR", help="Local benchmark data folder.")
    ] = None,
    option: Annotated[
        list[str] | None,
        typer.Option("--option", "-o", metavar="KEY=VALUE", help="Backend/task option."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Write examples.jsonl and summary.json here.")
    ] = None,
    cache: Annotated[
        bool,
        typer.Option(
            help="Reuse the model's cached outputs (generations, option scores); verdicts are "
            "always derived again."
        ),
    ] = True,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Evaluate a prompt: accuracy (or the mean score of a graded metric, -o task.metric=f1) with
    a bootstrap 95% interval, per-example JSONL."""
    from promptopt.config import parse_options, refuse_run_level_options
    from promptopt.evalcache import EvalCache
    from promptopt.evaluation import evaluate, write_report
    from promptopt.outputs import check_writable_dir
    from promptopt.progress import Progress
    from promptopt.types import Prompt

    if (prompt is None) == (run is None):
        raise PromptoptError(
            "give exactly one of --prompt and --run",
            hint="e.g. --prompt 'Use ...', or --prompt '' for the empty prompt",
        )
    split_name, mode = check_split_and_scoring(split, scoring)
    if run is not None:
        check_run_dir(run)
    if task is None:
        task = task_from_run(run) if run is not None else None
        if task is None:
            raise PromptoptError("no --task given", hint="list tasks with `promptopt tasks`")
    if prompt is not None:
        text = prompt_text(prompt)
    else:
        assert run is not None
        text = prompt_from_run(run)
    if out is not None:
        check_writable_dir(out, "--out")
    separator = separator_from_run(run) if run is not None else None
    options: dict[str, Any] = parse_options(option)
    refuse_run_level_options(options)
    run_level = {"data_dir": data_dir} if data_dir else {}
    task_obj, backend_obj = build_task_and_backend(
        task, backend, model, options, run_level, split=split_name
    )
    examples = apply_limit(task_obj.examples(split_name), limit, split=split, task=task)
    note = task_note(task_obj)
    if note:
        typer.echo(note, err=True)
    report = evaluate(
        backend_obj,
        task_obj,
        Prompt(text=text, separator=separator),
        examples,
        scoring=mode,
        max_new_tokens=max_new_tokens,
        split=split,
        progress=Progress(enabled=None if progress else False),
        cache=EvalCache.default() if cache else None,
    )
    backend_obj.close()
    if report.prompt_label is not None:
        typer.echo(f"promptopt: evaluated the {report.prompt_label}", err=True)
    typer.echo(json.dumps(report.summary(), indent=2))
    if out is not None:
        kept = (
            "the summary is printed above and the model outputs are cached: rerun with a "
            "writable --out and nothing is generated again"
            if cache
            else "the summary is printed above; free space or pass another --out, then rerun"
        )
        write_report(report, out, hint=kept)


def task_note(task: Task) -> str | None:
    """One stderr line with what :meth:`~promptopt.components.Task.describe` says about the
    loaded data (a data file's columns and detected answer type), or None when nothing."""
    details = task.describe()
    if not details:
        return None
    shown = "; ".join(f"{key.replace('_', ' ')}: {_plain(value)}" for key, value in details.items())
    return f"promptopt: task {task.name}: {shown}"


def _plain(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    return str(value)


def prompt_text(prompt: str) -> str:
    """The text ``--prompt`` evaluates: a blank one is the empty prompt ``""`` (the bare
    question), exactly what a study scores as its empty-prompt baseline."""
    return prompt if prompt.strip() else ""


def check_run_dir(run_dir: Path) -> None:
    """A one-line error unless ``run_dir`` is a folder that ``promptopt run`` wrote."""
    from promptopt.rundir import CONFIG, RESULT

    fix = (
        "pass a folder `promptopt run` wrote (runs/<method>-<task>-<time>), or evaluate a text "
        "with --prompt TEXT --task NAME"
    )
    if not run_dir.is_dir():
        what = "is not a folder" if run_dir.exists() else "does not exist"
        raise PromptoptError(f"--run {str(run_dir)!r} {what}", hint=fix)
    if not (run_dir / CONFIG).is_file() and not (run_dir / RESULT).is_file():
        raise PromptoptError(
            f"--run {str(run_dir)!r} holds no promptopt run (no {CONFIG} or {RESULT})", hint=fix
        )


def apply_limit(examples: list[Any], limit: int | None, *, split: str, task: str) -> list[Any]:
    """The first ``limit`` examples; a ``limit`` above the split's size says so on stderr (one
    line) instead of clamping silently."""
    if limit is None:
        return examples
    if limit > len(examples):
        typer.echo(
            f"promptopt: --limit {limit} is more than the {len(examples)} examples of the "
            f"{split} split of {task}; evaluating all {len(examples)}",
            err=True,
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
    With ``split``, its examples load before the model does, so bad data fails fast."""
    from promptopt.options import build_command_options
    from promptopt.registry import get_registry

    registry = get_registry()
    task_cls = registry.task(task)
    backend_cls = registry.backend(backend)
    built = build_command_options({"task": task_cls, "backend": backend_cls}, options, run_level)
    task_obj = task_cls(built["task"])
    if split is not None:
        task_obj.examples(split)
    return task_obj, backend_cls(model, built["backend"])
