"""``promptopt plugins``, ``promptopt tasks`` and ``promptopt methods``: what is installed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer


def register(app: typer.Typer) -> None:
    app.command(name="plugins", short_help="List installed plugins and their components.")(
        plugins_command
    )
    app.command(name="tasks", short_help="List tasks, answer types and split sizes.")(tasks_command)
    app.command(name="methods", short_help="List methods and their default options.")(
        methods_command
    )


def plugins_command(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List installed plugins with versions, hooks and the components each contributes."""
    from promptopt.registry import plugin_rows

    rows = plugin_rows()
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        where = f"{row['distribution']} {row['version']}".strip() or "(from path)"
        typer.echo(f"{row['name']}  [{where}]")
        typer.echo(f"  hooks: {', '.join(row['hooks'])}")
        for comp in row["components"]:
            typer.echo(f"  {comp['kind']}: {comp['name']}")


def tasks_command(
    data_dir: Annotated[
        str | None, typer.Option(metavar="DIR", help="Local benchmark data folder.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List tasks with their answer types and split sizes (loads each task's data)."""
    from promptopt.errors import PromptoptError
    from promptopt.registry import get_registry

    if data_dir and not Path(data_dir).expanduser().is_dir():
        raise PromptoptError(
            f"data directory {data_dir!r} (from --data-dir) is not a folder",
            hint="pass an existing folder as --data-dir (each task plugin documents its layout)",
        )
    registry = get_registry()
    rows = []
    for name in registry.names("task"):
        cls = registry.task(name)
        values = (
            {"data_dir": data_dir} if data_dir and "data_dir" in cls.Options.model_fields else {}
        )
        row: dict[str, Any] = {"name": name, "answer_type": getattr(cls, "answer_type", "")}
        try:
            task = cls(cls.Options(**values))
            row["splits"] = task.split_sizes()
        except PromptoptError as exc:
            row["error"] = exc.message
        row["answer_type"] = str(getattr(row["answer_type"], "value", row["answer_type"]))
        rows.append(row)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    width = max((len(r["name"]) for r in rows), default=4)
    typer.echo(f"{'task':<{width}}  {'answer type':<16}  train  dev  test")
    for r in rows:
        sizes = r.get("splits")
        shown = (
            f"{sizes['train']:>5}  {sizes['dev']:>3}  {sizes['test']:>4}"
            if sizes
            else f"(data unavailable: {r.get('error')})"
        )
        typer.echo(f"{r['name']:<{width}}  {r['answer_type']:<16}  {shown}")


def methods_command() -> None:
    """List methods with their components, backend and default options."""
    from promptopt.registry import get_registry

    registry = get_registry()
    for name in registry.names("method"):
        cls = registry.method(name)
        typer.echo(f"{name}: {cls.description}")
        typer.echo(
            f"  backend={cls.backend} proposer={cls.proposer} reasoner={cls.reasoner or 'none'} "
            f"loss_extractor={cls.loss_extractor} selector={cls.selector}"
        )
        options = {k: f.default for k, f in cls.Options.model_fields.items()}
        typer.echo("  options: " + ", ".join(f"{k}={v}" for k, v in sorted(options.items())))
        for kind, values in cls.defaults.items():  # keyed by component kind
            shown = ", ".join(f"{k}={v}" for k, v in sorted(values.items()))
            typer.echo(f"  {kind.replace('_', ' ')} defaults: {shown}")
