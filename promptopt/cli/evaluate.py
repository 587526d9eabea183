"""``promptopt eval``: accuracy of a prompt on a task split, with any backend."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from promptopt.errors import PromptoptError


def register(app: typer.Typer) -> None:
    app.command(name="eval")(eval_command)


def prompt_from_run(run_dir: Path, which: str = "best_prompt") -> str:
    """The prompt a finished run chose (``best_prompt``) or started from (``initial_prompt``)."""
    result = run_dir / "result.json"
    if not result.is_file():
        raise PromptoptError(
            f"{str(run_dir)!r} has no result.json",
            hint="pass a finished run directory, or finish it with `promptopt run --resume`",
        )
    data = json.loads(result.read_text())
    if which not in data:
        raise PromptoptError(
            f"{str(result)!r} has no {which!r}", hint="was it written by promptopt?"
        )
    return str(data[which])


def eval_command(
    task: Annotated[str, typer.Option(help="Task name, e.g. bbh/boolean_expressions.")],
    prompt: Annotated[str | None, typer.Option(help="The prompt text to evaluate.")] = None,
    run: Annotated[Path | None, typer.Option(help="Evaluate the best prompt of this run.")] = None,
    backend: Annotated[str, typer.Option(help="Model backend: hf, llamacpp, ...")] = "hf",
    model: Annotated[str | None, typer.Option(help="Hub id, local folder or GGUF file.")] = None,
    split: Annotated[str, typer.Option(help="train, dev or test.")] = "test",
    limit: Annotated[int | None, typer.Option(help="Evaluate the first N examples.")] = None,
    scoring: Annotated[
        str, typer.Option(help="generate (parse) or logprob (options).")
    ] = "generate",
    max_new_tokens: Annotated[int, typer.Option(help="Reasoning length limit.")] = 512,
    data_dir: Annotated[str | None, typer.Option(help="Local benchmark data folder.")] = None,
    option: Annotated[
        list[str] | None, typer.Option("--option", "-o", help="Backend/task option key=value.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Write examples.jsonl and summary.json here.")
    ] = None,
    cache: Annotated[bool, typer.Option(help="Reuse cached per-example outcomes.")] = True,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Evaluate a prompt: accuracy with a bootstrap 95% interval, per-example JSONL."""
    from promptopt.config import parse_options
    from promptopt.evaluation import evaluate, write_report
    from promptopt.progress import Progress
    from promptopt.types import Prompt

    if (prompt is None) == (run is None):
        raise PromptoptError(
            "give exactly one of --prompt and --run", hint="e.g. --prompt 'Use ...'"
        )
    if split not in ("train", "dev", "test"):
        raise PromptoptError(f"unknown split {split!r}", hint="use train, dev or test")
    if scoring not in ("generate", "logprob"):
        raise PromptoptError(f"unknown scoring {scoring!r}", hint="use generate or logprob")
    text = prompt if prompt is not None else prompt_from_run(run)  # type: ignore[arg-type]
    options: dict[str, Any] = parse_options(option)
    if data_dir:
        options["data_dir"] = data_dir
    task_obj, backend_obj = build_task_and_backend(task, backend, model, options)
    examples = task_obj.examples(split)
    if limit is not None:
        examples = examples[:limit]
    report = evaluate(
        backend_obj,
        task_obj,
        Prompt(text=text),
        examples,
        scoring=scoring,  # type: ignore[arg-type]
        max_new_tokens=max_new_tokens,
        split=split,
        progress=Progress(enabled=None if progress else False),
        cache=open_cache() if cache else None,
    )
    backend_obj.close()
    if out is not None:
        write_report(report, out)
    typer.echo(json.dumps(report.summary(), indent=2))


def build_task_and_backend(
    task: str, backend: str, model: str | None, options: dict[str, Any]
) -> tuple[Any, Any]:
    """Resolve and construct a task and a backend from flat options (unknown keys are errors)."""
    from promptopt.assembly import build_options, check_unknown_options
    from promptopt.components import Backend
    from promptopt.registry import get_registry

    registry = get_registry()
    task_cls = registry.get("task", task)
    backend_cls = registry.get("backend", backend)
    check_unknown_options(options, [task_cls, backend_cls])
    assert issubclass(backend_cls, Backend)
    task_obj = task_cls(build_options(task_cls, options))
    backend_obj = backend_cls(model, build_options(backend_cls, options))
    return task_obj, backend_obj


def open_cache() -> Any:
    """The on-disk evaluation cache, when the cache module is installed."""
    try:
        from promptopt.evalcache import EvalCache  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    return EvalCache.default()
