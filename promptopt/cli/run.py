"""``promptopt run``: start or resume an optimization run (flags and printing; the run itself is
:func:`promptopt.api.optimize_config` / :func:`promptopt.api.continue_run`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from promptopt.errors import PromptoptError


def register(app: typer.Typer) -> None:
    app.command(name="run", short_help="Optimize a prompt (or --resume a run).")(run_command)


def run_command(
    method: Annotated[str | None, typer.Argument(help="Method preset, e.g. greater.")] = None,
    task: Annotated[
        str | None,
        typer.Option(help="Task name (folio, bbh/navigate), data file (FILE.csv) or hf:ORG/NAME."),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(help="Hub id, local folder, GGUF file or a name from `promptopt models`."),
    ] = None,
    backend: Annotated[
        str | None, typer.Option(help="Model backend (default: the method's).")
    ] = None,
    optimizer_model: Annotated[
        str | None,
        typer.Option(help="Model that writes prompts (methods like gpo; default: the task model)."),
    ] = None,
    optimizer_backend: Annotated[
        str | None, typer.Option(help="Backend of the optimizer model (default: the task's).")
    ] = None,
    option: Annotated[
        list[str] | None,
        typer.Option("--option", "-o", metavar="KEY=VALUE", help="Option (repeatable)."),
    ] = None,
    config: Annotated[
        Path | None, typer.Option(metavar="FILE.toml", help="TOML file with run settings.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(metavar="DIR", help="Run directory (default runs/<name>).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed.")] = None,
    data_dir: Annotated[
        str | None, typer.Option(metavar="DIR", help="Local benchmark data folder.")
    ] = None,
    proposer: Annotated[str | None, typer.Option(help="Override the proposer.")] = None,
    reasoner: Annotated[str | None, typer.Option(help="Override the reasoner.")] = None,
    loss_extractor: Annotated[str | None, typer.Option(help="Override the loss extractor.")] = None,
    selector: Annotated[str | None, typer.Option(help="Override the selector.")] = None,
    plugin: Annotated[
        list[Path] | None,
        typer.Option(metavar="FILE.py", help="Load a plugin from this file (repeatable)."),
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option(metavar="DIR", help="Continue the run in DIR from its checkpoint."),
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Show components, options (with their sources) and splits; no model."
        ),
    ] = False,
    tracker: Annotated[
        str | None,
        typer.Option(
            envvar="PROMPTOPT_TRACKER",
            help="Track the run(s) in an experiment tracker, e.g. mlflow (a plugin's).",
        ),
    ] = None,
    trust_remote_code: Annotated[
        bool,
        typer.Option(
            "--trust-remote-code",
            help="Allow trust_remote_code from a config file or a resumed run (runs model code).",
        ),
    ] = False,
) -> None:
    """Optimize a prompt: `promptopt run greater --task folio -o steps=2 -o train_size=4`."""
    from promptopt.api import continue_run, optimize_config
    from promptopt.config import check_remote_code, load_toml, make_run_config, parse_options
    from promptopt.pluginmanager import load_plugin_files
    from promptopt.rundir import RunDir, default_run_dir
    from promptopt.runs import describe_run, saved_run_config
    from promptopt.tracking import tracking

    load_plugin_files(plugin or [])
    if resume is not None:
        given = {
            "METHOD": method,
            "--task": task,
            "-o": option,
            "--config": config,
            "--model": model,
            "--backend": backend,
            "--optimizer-model": optimizer_model,
            "--optimizer-backend": optimizer_backend,
            "--seed": seed,
            "--data-dir": data_dir,
            "--out": out,
            "--proposer": proposer,
            "--reasoner": reasoner,
            "--loss-extractor": loss_extractor,
            "--selector": selector,
        }
        clashing = [flag for flag, value in given.items() if value not in (None, [])]
        if clashing:
            raise PromptoptError(
                "--resume takes the settings saved in the run directory, "
                f"not {', '.join(clashing)}",
                hint="drop them, or start a new run with the changed settings",
            )
        if dry_run:
            saved = make_run_config(RunDir.open(resume).read_config(), {})
            print(json.dumps(describe_run(saved), indent=2))
            return
        try:
            with tracking(tracker):
                result = continue_run(
                    resume, progress=progress, trust_remote_code=trust_remote_code
                )
        except PromptoptError as exc:
            raise _for_resume(exc) from None
        _print_result(result.to_dict())
        _print_next_step(result.run_dir, saved_run_config(RunDir.open(resume)), plugin or [])
        return
    file_values = load_toml(config) if config else {}
    if not trust_remote_code:
        check_remote_code(dict(file_values.get("options", {})), f"config file {str(config)!r}")
    components = {
        k: v
        for k, v in {
            "proposer": proposer,
            "reasoner": reasoner,
            "loss_extractor": loss_extractor,
            "selector": selector,
        }.items()
        if v
    }
    cli_values: dict[str, Any] = {
        "method": method,
        "task": task,
        "model": model,
        "backend": backend,
        "optimizer_model": optimizer_model,
        "optimizer_backend": optimizer_backend,
        "seed": seed,
        "data_dir": data_dir,
        "options": parse_options(option),
        "components": components,
    }
    if not (method or file_values.get("method")):
        raise PromptoptError("no METHOD given", hint="e.g. `promptopt run greater --task folio`")
    if not (task or file_values.get("task")):
        raise PromptoptError("no --task given", hint="list tasks with `promptopt tasks`")
    run_config = make_run_config(file_values, cli_values)
    if dry_run:
        print(json.dumps(describe_run(run_config), indent=2))
        return
    # named here, not by the run, so the closing line can name it
    path = out if out is not None else default_run_dir(run_config.method, run_config.task)
    with tracking(tracker):
        result = optimize_config(run_config, out=path, progress=progress)
    _print_result(result.to_dict())
    _print_next_step(path, run_config, plugin or [])


def _for_resume(exc: PromptoptError) -> PromptoptError:
    """An error met while resuming, with a hint that works: ``--resume`` takes no ``-o``, so
    advice to pass one becomes advice to start a new run with it."""
    if not exc.hint or "-o " not in exc.hint:
        return exc
    return PromptoptError(
        exc.message,
        hint="a resumed run keeps the options saved in its config.json; start a new run "
        f"with the same settings and this change instead: {exc.hint}",
    )


def _print_next_step(run_dir: Path, run_config: Any | None, plugin_files: list[Path]) -> None:
    """After the result JSON, on stderr (stdout stays pure JSON): where the run directory is
    and the `promptopt eval --run DIR` command that measures its prompt on the test split."""
    from promptopt.cli.nextstep import next_step_line

    print(next_step_line(run_dir, run_config, plugin_files), file=sys.stderr)


def _print_result(result: dict[str, Any]) -> None:
    shown = {
        key: result.get(key)
        for key in (
            "best_prompt",
            "initial_prompt",
            "dev_accuracy_initial",
            "dev_accuracy_final",
            "accepted",
            "accept_p_value",
            "steps_run",
        )
        if key in result
    }
    print(json.dumps(shown, indent=2))
