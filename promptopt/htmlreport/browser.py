"""The per-example browser's data: views (one per evaluated run, or one evaluation) of rows
(one per test example: question, gold answer and, per prompt, the reasoning, the parsed answer
and the score), each row tagged for the filters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

#: The filters, in the order the page shows them: tag -> label.
FILTERS = {
    "to-correct": "flipped to correct",
    "to-wrong": "flipped to wrong",
    "correct": "correct",
    "wrong": "wrong",
    "no-answer": "no answer",
}


@dataclass(frozen=True)
class Cell:
    """One prompt's outcome on one example."""

    reasoning: str
    answer_text: str
    parsed: str | None
    score: float

    @property
    def correct(self) -> bool:
        return self.score >= 1.0


@dataclass(frozen=True)
class Row:
    """One test example and each column's outcome on it."""

    id: str
    question: str
    gold: str
    cells: list[Cell]
    tags: list[str]


@dataclass(frozen=True)
class Column:
    """A prompt of the view: its role (``initial prompt``, ``optimized``...) and text."""

    name: str
    prompt: str | None


@dataclass
class View:
    """What the browser shows at once: one run of a study (or one evaluation)."""

    id: str
    task: str
    method: str
    seed: str
    label: str
    columns: list[Column]
    rows: list[Row] = field(default_factory=list)
    note: str = ""

    def counts(self) -> dict[str, int]:
        """Rows per filter tag (the page recounts them as the search narrows them)."""
        return {tag: sum(tag in row.tags for row in self.rows) for tag in FILTERS}

    def filters(self) -> dict[str, str]:
        """The filters that apply: flips need a reference and an optimized column."""
        flips = len(self.columns) > 1
        skip = {"correct", "wrong"} if flips else {"to-correct", "to-wrong"}
        return {tag: label for tag, label in FILTERS.items() if tag not in skip}


def cell_of(outcome: Any) -> Cell:
    """A :class:`Cell` from an :class:`~promptopt.evaluation.ExampleOutcome` or its dict."""
    get = outcome.get if isinstance(outcome, dict) else lambda key: getattr(outcome, key)
    return Cell(
        reasoning=str(get("reasoning") or ""),
        answer_text=str(get("answer_text") or ""),
        parsed=None if get("predicted") is None else str(get("predicted")),
        score=float(get("score") or 0.0),
    )


def tags_of(cells: Sequence[Cell], reference: int | None, optimized: int) -> list[str]:
    """The filter tags of a row: ``to-correct`` / ``to-wrong`` when the optimized column
    scores above / below the reference column, ``correct`` / ``wrong`` of the optimized
    column, ``no-answer`` when it parsed no answer."""
    mine = cells[optimized]
    tags = ["correct" if mine.correct else "wrong"]
    if reference is not None:
        before = cells[reference]
        if mine.score > before.score:
            tags.append("to-correct")
        elif mine.score < before.score:
            tags.append("to-wrong")
    if mine.parsed is None:
        tags.append("no-answer")
    return tags


def rows_of(
    examples: Sequence[Any],
    columns: Sequence[Sequence[Any]],
    *,
    reference: int | None,
    optimized: int,
) -> list[Row]:
    """Rows of ``examples`` (objects with ``id``, ``question``, ``answer``) from each column's
    outcomes, in the examples' order (outcomes matched by example id)."""
    by_id = [{_id_of(o): o for o in outcomes} for outcomes in columns]
    rows = []
    for ex in examples:
        if not all(ex.id in found for found in by_id):
            continue
        cells = [cell_of(found[ex.id]) for found in by_id]
        rows.append(Row(ex.id, ex.question, ex.answer, cells, tags_of(cells, reference, optimized)))
    return rows


def _id_of(outcome: Any) -> str:
    return str(outcome["example_id"] if isinstance(outcome, dict) else outcome.example_id)


def page_views(views: Sequence[View]) -> dict[str, Any]:
    """The browser's template context: each view with the metadata the page's script reads
    (embedded as JSON), and the filters that apply."""
    filters: dict[str, str] = {}
    for view in views:
        filters.update(view.filters())
    items = [
        {
            "view": view,
            "meta": {"id": view.id, "task": view.task, "method": view.method, "seed": view.seed},
        }
        for view in views
    ]
    return {"views": items, "filters": {t: FILTERS[t] for t in FILTERS if t in filters}}
