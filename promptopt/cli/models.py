"""``promptopt models``: the short model names every backend understands (``--model NAME``)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer


def register(app: typer.Typer) -> None:
    app.command(name="models", short_help="List short model names (--model NAME) and files.")(
        models_command
    )


def model_rows() -> list[dict[str, Any]]:
    """One row per known name: aliases, what it is, the package carrying it and its file."""
    from promptopt.models import DEFAULT_MODEL, MODELS

    rows = []
    for entry in MODELS:
        path: str | None = None
        if entry.assemble:  # listing must not build a file of hundreds of MB
            if entry.installed():
                path = f"built by {entry.module}.{entry.assemble}() when first used"
        elif entry.installed():
            path = str(entry.path())
        rows.append(
            {
                "name": entry.name,
                "aliases": list(entry.aliases),
                "default": entry is DEFAULT_MODEL,
                "description": entry.description,
                "package": entry.package,
                "install": entry.install,
                "path": path,
            }
        )
    return rows


def models_command(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List the short names --model accepts on every backend, and where their files are."""
    rows = model_rows()
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        aliases = f" (aliases: {', '.join(row['aliases'])})" if row["aliases"] else ""
        default = ", the default" if row["default"] else ""
        typer.echo(f"{row['name']}{aliases}{default}: {row['description']}")
        where = row["path"] or f"not installed: {row['install']}"
        typer.echo(f"    package {row['package']}: {where}")
    typer.echo("Any backend takes these names; otherwise pass a model file, a folder or a hub id.")
