"""The Jinja2 environment of the HTML reports (autoescaping on: every model output shows as
text) and the pieces every page shares: inline images and a guarded write."""

from __future__ import annotations

import base64
import sys
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

REPORT_NAME = "report.html"


@lru_cache(maxsize=1)
def environment() -> Any:
    """The templates in ``promptopt/htmlreport/templates``, HTML-escaped by default."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("promptopt.htmlreport", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pct"] = lambda value: "–" if value is None else f"{100 * float(value):.1f}"
    env.filters["num"] = _number
    return env


def _number(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def render(template: str, **context: Any) -> str:
    """The page ``template`` with ``context`` (the shared style and script included)."""
    env = environment()
    assets = {name: _asset(name) for name in ("style.css", "browser.js")}
    return str(env.get_template(template).render(assets=assets, **context))


@lru_cache(maxsize=4)
def _asset(name: str) -> str:
    from importlib.resources import files

    return (files("promptopt.htmlreport") / "templates" / name).read_text(encoding="utf-8")


def image_uri(path: Path) -> str | None:
    """A PNG file as a ``data:`` URI (the page stays one file), None when it is absent."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def write_html(path: Path, build: Callable[[], str]) -> Path | None:
    """Write the page ``build`` returns to ``path``; any failure (a template error, a full
    disk) is one warning line on stderr and None: the files written before it are the run's
    or study's record, the page only shows them."""
    from promptopt.rundir import atomic_write_text

    try:
        atomic_write_text(path, build())
    except Exception as exc:  # the report is optional: never lose a finished run over it
        print(f"promptopt: warning: could not write {path}: {exc}", file=sys.stderr)
        return None
    return path
