"""``promptopt study``: every (method, task, seed) run, held-out test evaluation against
baselines, statistics, report and plots; rerun the same command to resume or re-report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    app.command(name="study", short_help="Run methods x tasks x seeds and report test gains.")(
        study_command
    )


def study_command(
    out: Annotated[Path, typer.Option(metavar="DIR", help="The study directory.")],
    methods: Annotated[
        str | None,
        typer.Option(help="Comma-separated methods, e.g. greater,gpo (omit to continue DIR)."),
    ] = None,
    tasks: Annotated[
        str | None,
        typer.Option(help="Comma-separated tasks or data files, e.g. bbh/navigate,my.csv."),
    ] = None,
    seeds: Annotated[
        str | None, typer.Option(help="Comma-separated seeds, e.g. 0,1,2 (default 0).")
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="Model of every run (default: the embedded model).")
    ] = None,
    backend: Annotated[
        str | None, typer.Option(help="Run backend (default: each method's own).")
    ] = None,
    optimizer_model: Annotated[
        str | None,
        typer.Option(help="Prompt-writing model of methods that use one (gpo; default: --model)."),
    ] = None,
    optimizer_backend: Annotated[
        str | None, typer.Option(help="Backend of the optimizer model (default: the run's).")
    ] = None,
    option: Annotated[
        list[str] | None,
        typer.Option("--option", "-o", metavar="KEY=VALUE", help="Run option (repeatable)."),
    ] = None,
    eval_backend: Annotated[
        str | None, typer.Option(help="Backend of the test evaluation (default: the runs').")
    ] = None,
    eval_model: Annotated[
        str | None, typer.Option(help="Model of the test evaluation (default: --model).")
    ] = None,
    eval_option: Annotated[
        list[str] | None,
        typer.Option(
            "--eval-option", metavar="KEY=VALUE", help="Option of the evaluation backend only."
        ),
    ] = None,
    eval_max_new_tokens: Annotated[
        int | None,
        typer.Option(min=1, help="Reasoning length at evaluation (default: the run's)."),
    ] = None,
    test_limit: Annotated[
        int | None, typer.Option(min=1, help="Evaluate the first N test examples.")
    ] = None,
    scoring: Annotated[
        str,
        typer.Option(help="generate (parse), logprob (options), or both: generate,logprob."),
    ] = "generate",
    test_from: Annotated[
        int | None,
        typer.Option(
            min=1, help="First row of every task's shared test set (default: after train+dev)."
        ),
    ] = None,
    baseline_prompt: Annotated[
        list[str] | None,
        typer.Option(metavar="TEXT", help="Also evaluate this prompt as a baseline (repeatable)."),
    ] = None,
    extend: Annotated[
        bool, typer.Option(help="Add --methods, --tasks and --seeds to the study in DIR.")
    ] = False,
    export: Annotated[
        Path | None,
        typer.Option(metavar="DEST", help="Also write the committable subset of DIR to DEST."),
    ] = None,
    pilot: Annotated[
        bool, typer.Option(help="Only measure the baselines on dev rows (never test).")
    ] = False,
    transfer: Annotated[
        str | None,
        typer.Option(help="Also evaluate on these quantizations / GGUF files, e.g. q8_0,q4_k_m."),
    ] = None,
    data_dir: Annotated[
        str | None, typer.Option(metavar="DIR", help="Local benchmark data folder.")
    ] = None,
    plugin: Annotated[
        list[Path] | None,
        typer.Option(metavar="FILE.py", help="Load a plugin from this file (repeatable)."),
    ] = None,
    tracker: Annotated[
        str | None,
        typer.Option(
            envvar="PROMPTOPT_TRACKER",
            help="Track the study in an experiment tracker, e.g. mlflow (a plugin's).",
        ),
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
    executor: Annotated[
        str, typer.Option(help="Where runs execute: local (this process) or ray (Ray tasks).")
    ] = "local",
    address: Annotated[
        str | None,
        typer.Option(help="Ray cluster address (--executor ray; default: start a local one)."),
    ] = None,
    cpus_per_run: Annotated[
        float, typer.Option(min=0.1, help="CPUs each Ray task asks for (--executor ray).")
    ] = 1.0,
) -> None:
    """Run a study: `promptopt study --methods greater --tasks bbh/navigate --seeds 0,1 --out DIR`.

    Runs live in DIR/runs/<method>/<task>/seed<k>; finished runs are skipped, started ones
    resumed. Every method and seed of a task is tested on the same rows. Writes DIR/report.md,
    report.json, accuracy.png, gain_vs_compute.png and report.html (tables and a per-example
    browser); DIR/study.json and invocations.jsonl record the study. `promptopt study --out DIR`
    alone continues it (or re-renders an export)."""
    from promptopt.api import study as _study
    from promptopt.config import parse_options
    from promptopt.pluginmanager import load_plugin_files
    from promptopt.studies.plan import parse_names, parse_seeds
    from promptopt.tracking import tracking

    load_plugin_files(plugin or [])
    settings = {
        "methods": methods,
        "tasks": tasks,
        "seeds": seeds,
        "model": model,
        "backend": backend,
        "options": option or [],
        "eval_backend": eval_backend,
        "eval_model": eval_model,
        "test_limit": test_limit,
        "scoring": scoring,
        "executor": executor,
    }
    with tracking(tracker) as tracked:
        tracked.study_start(out, settings)
        result = _study(
            parse_names(methods, "--methods") if methods is not None else None,
            parse_names(tasks, "--tasks") if tasks is not None else None,
            out,
            seeds=parse_seeds(seeds) if seeds is not None else None,
            model=model,
            backend=backend,
            optimizer_model=optimizer_model,
            optimizer_backend=optimizer_backend,
            options=parse_options(option),
            eval_backend=eval_backend,
            eval_model=eval_model,
            eval_options=parse_options(eval_option),
            eval_max_new_tokens=eval_max_new_tokens,
            test_limit=test_limit,
            scoring=scoring,
            transfer=parse_names(transfer, "--transfer") if transfer is not None else [],
            data_dir=data_dir,
            test_from=test_from,
            baseline_prompts=baseline_prompt or [],
            extend=extend,
            export=export,
            pilot=pilot,
            progress=progress,
            executor=executor,
            address=address,
            cpus_per_run=cpus_per_run,
            plugins=plugin or [],
        )
        tracked.study_end(out, result.files)
    typer.echo(f"pilot: {out / 'pilot' / 'pilot.md'}" if pilot else f"report: {out / 'report.md'}")
    if export is not None:
        typer.echo(f"export: {export}")
