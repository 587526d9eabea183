"""``promptopt eval --out``'s ``report.html``: the summary and the per-example browser of the
evaluated prompt (its reasoning, parsed answer and score per example)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from promptopt.htmlreport.browser import Cell, Column, Row, View, page_views, tags_of
from promptopt.htmlreport.render import REPORT_NAME, render, write_html

if TYPE_CHECKING:
    from promptopt.results import EvalResult


def eval_view(result: EvalResult) -> View:
    """The evaluation as one browser view with one column."""
    label = result.summary.get("prompt_label") or "evaluated prompt"
    view = View(
        id="eval",
        task=result.task,
        method="",
        seed="",
        label=f"{result.task} ({result.split})",
        columns=[Column(str(label), result.prompt)],
    )
    for record in result.records:
        cells = [Cell(record.reasoning, record.answer_text, record.parsed, record.score)]
        view.rows.append(
            Row(record.id, record.question, record.gold, cells, tags_of(cells, None, 0))
        )
    return view


def eval_page(result: EvalResult) -> str:
    """The HTML of an evaluation."""
    summary: dict[str, Any] = dict(result.summary)
    return render(
        "eval.html.j2",
        title=f"promptopt eval: {result.task} ({result.split})",
        summary=summary,
        prompt=result.prompt,
        **page_views([eval_view(result)]),
        switch=False,
    )


def write_eval_report(result: EvalResult, out_dir: Path) -> Path | None:
    """Write ``OUT/report.html`` next to ``summary.json`` and ``examples.jsonl`` (a failure is
    one warning line)."""
    return write_html(out_dir / REPORT_NAME, lambda: eval_page(result))
