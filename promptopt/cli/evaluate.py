"""``promptopt eval``: a prompt's score on a task split, with any backend (flags and printing;
the evaluation itself is :func:`promptopt.api.evaluate`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from promptopt.errors import PromptoptError


def register(app: typer.Typer) -> None:
    app.command(name="eval", short_help="Evaluate a prompt on a task with any backend.")(
        eval_command
    )


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
        Path | None, typer.Option(help="Write examples.jsonl, summary.json and report.html here.")
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
    """Evaluate a prompt: mean score (accuracy) with a bootstrap 95% interval, per-example JSONL."""
    from promptopt.api import evaluate
    from promptopt.config import parse_options
    from promptopt.evalsetup import (
        check_run_dir,
        check_split_and_scoring,
        prompt_from_run,
        separator_from_run,
        task_from_run,
        with_run_task_settings,
    )
    from promptopt.evaluation import write_report
    from promptopt.htmlreport.evalpage import write_eval_report
    from promptopt.outputs import check_writable_dir

    if (prompt is None) == (run is None):
        raise PromptoptError(
            "give exactly one of --prompt and --run",
            hint="e.g. --prompt 'Use ...', or --prompt '' for the empty prompt",
        )
    check_split_and_scoring(split, scoring)
    if run is not None:
        check_run_dir(run)
    if task is None:
        task = task_from_run(run) if run is not None else None
        if task is None:
            raise PromptoptError("no --task given", hint="list tasks with `promptopt tasks`")
    text = prompt if prompt is not None else prompt_from_run(run) if run is not None else ""
    if out is not None:
        check_writable_dir(out, "--out")
    options = parse_options(option)
    if run is not None:
        options, data_dir = with_run_task_settings(run, task, options, data_dir)
    result = evaluate(
        text,
        task,
        model=model,
        backend=backend,
        split=split,
        limit=limit,
        scoring=scoring,
        max_new_tokens=max_new_tokens,
        options=options,
        data_dir=data_dir,
        cache=cache,
        progress=progress,
        separator=separator_from_run(run) if run is not None else None,
    )
    report = result.report
    assert report is not None
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
        write_eval_report(result, out)  # after the data files; a failure is one warning line
