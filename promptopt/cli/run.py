"""``promptopt run``: start or resume an optimization run."""

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
        str | None, typer.Option(help="Task name, e.g. folio, gsm8k, bbh/navigate.")
    ] = None,
    model: Annotated[str | None, typer.Option(help="Hub id, local folder or GGUF file.")] = None,
    backend: Annotated[
        str | None, typer.Option(help="Model backend (default: the method's).")
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
) -> None:
    """Optimize a prompt: `promptopt run greater --task folio -o steps=2 -o train_size=4`."""
    from promptopt.config import load_toml, make_run_config, parse_options
    from promptopt.rundir import RunDir

    _load_path_plugins(plugin or [])
    if resume is not None:
        given = {
            "METHOD": method,
            "--task": task,
            "-o": option,
            "--config": config,
            "--model": model,
            "--backend": backend,
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
        run_dir = RunDir.open(resume)
        finished = run_dir.read_result()
        if finished is not None:
            print(f"run {resume} has already finished; its result:", file=sys.stderr)
            _print_result(finished)
            return
        run_config = make_run_config(run_dir.read_config(), {})
        run_dir.read_checkpoint()  # an unreadable checkpoint fails now, before a model loads
    else:
        file_values = load_toml(config) if config else {}
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
            "seed": seed,
            "data_dir": data_dir,
            "options": parse_options(option),
            "components": components,
        }
        if not (method or file_values.get("method")):
            raise PromptoptError(
                "no METHOD given", hint="e.g. `promptopt run greater --task folio`"
            )
        if not (task or file_values.get("task")):
            raise PromptoptError("no --task given", hint="list tasks with `promptopt tasks`")
        run_config = make_run_config(file_values, cli_values)
        run_dir = None
    result = execute(run_config, out=out, resume_dir=run_dir, progress=progress)
    _print_result(result)


def _load_path_plugins(paths: list[Path]) -> None:
    if not paths:
        return
    from promptopt.pluginmanager import get_plugin_manager, register_plugin_file
    from promptopt.registry import reset_registry

    pm = get_plugin_manager()
    for path in paths:
        register_plugin_file(pm, path)
    reset_registry()


def execute(
    run_config: Any, *, out: Path | None, resume_dir: Any = None, progress: bool = True
) -> dict[str, Any]:
    """Build the components and run the loop in a new or resumed run directory."""
    from promptopt.assembly import build_components
    from promptopt.loop import optimize
    from promptopt.pluginmanager import get_plugin_manager
    from promptopt.progress import Progress
    from promptopt.records import RunInfo
    from promptopt.registry import get_registry
    from promptopt.rundir import RunDir, default_run_dir

    registry = get_registry()
    path = out or default_run_dir(run_config.method, run_config.task)
    if resume_dir is None:
        RunDir.ensure_free(path)  # before the model loads
    components = build_components(run_config, registry)
    config_dict = run_config.model_dump()
    if resume_dir is None:
        run_dir = RunDir.create(path, config_dict, installed_plugins())
    else:
        run_dir = resume_dir
    info = RunInfo(
        run_dir=run_dir.path,
        config=config_dict,
        components=components.names(),
        resumed=resume_dir is not None,
    )
    print(f"run directory: {run_dir.path}", file=sys.stderr)
    try:
        return optimize(
            components,
            run_dir,
            get_plugin_manager(),
            info,
            seed=run_config.seed,
            progress=Progress(enabled=None if progress else False),
        )
    except KeyboardInterrupt:
        print(
            f"promptopt: interrupted; resume with `promptopt run --resume {run_dir.path}`",
            file=sys.stderr,
        )
        raise
    finally:
        run_dir.close()
        components.backend.close()


def installed_plugins() -> list[dict[str, Any]]:
    """Plugin names, distributions, versions, hooks and components (for plugins.json)."""
    from promptopt.cli.listing import plugin_rows

    return plugin_rows()


def _print_result(result: dict[str, Any]) -> None:
    shown = {
        key: result.get(key)
        for key in (
            "best_prompt",
            "initial_prompt",
            "dev_accuracy_initial",
            "dev_accuracy_final",
            "steps_run",
        )
        if key in result
    }
    print(json.dumps(shown, indent=2))
