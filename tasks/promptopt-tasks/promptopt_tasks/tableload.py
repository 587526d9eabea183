"""A table's rows made into a task's examples: the question (a column or a template over
columns) and the answer column, the answer type (asked, or detected with its reason), gold
answers normalized as parsed ones are, and the train/dev/test splits. Bad rows are one-line
errors naming them (or skipped with a warning on request)."""

from __future__ import annotations

import re
import string
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from promptopt.errors import DataError
from promptopt.types import Example
from promptopt_tasks.answerdetect import AnswerSpec, canonical_labels, detect, ordered_labels
from promptopt_tasks.answers import AnswerFormat, Binary, Labels
from promptopt_tasks.base import Splits
from promptopt_tasks.rows import BadRowsSkipped, Row
from promptopt_tasks.tables import Table, cell_text
from promptopt_tasks.tablesplits import carve_all, from_parts, split_of, warn_repeated_questions

if TYPE_CHECKING:
    from promptopt_tasks.datafile import DataFileOptions

#: Columns taken as the question / the answer when none is named, first present wins.
QUESTION_COLUMNS = ("question", "input", "text", "prompt")
ANSWER_COLUMNS = ("answer", "target", "label", "output")
#: How many bad rows an error names.
SHOWN_ROWS = 5


@dataclass(frozen=True)
class Loaded:
    """A table read into examples: the splits, how answers read, and what to tell users."""

    splits: Splits
    answers: AnswerFormat
    facts: dict[str, Any]


class Question:
    """The question of a row: one column, or a template over columns (``"{premise}\\nQ:
    {hypothesis}"``, read by ``str.format``'s own parser: fields are plain column names, filled
    with the row's text, never evaluated; ``{{`` is a literal brace)."""

    def __init__(self, spec: str, table: Table) -> None:
        self.spec = spec
        self.template = "{" in spec or "}" in spec
        if not self.template:
            self.columns: tuple[str, ...] = (column(table, spec, "question"),)
            return
        fix = "write column names in braces, e.g. '{premise} {hypothesis}' (a literal brace: {{)"
        try:
            fields = [(n, f, c) for _, n, f, c in string.Formatter().parse(spec) if n is not None]
        except ValueError as exc:
            raise DataError(f"question template {spec!r}: {exc}", hint=fix) from None
        for name, format_spec, conversion in fields:
            if not re.fullmatch(r"[^.\[\]!:]+", name) or format_spec or conversion:
                raise DataError(
                    f"question template {spec!r}: {{{name}}} is not a plain column name",
                    hint=f"{fix}; the columns: {listing(table)}",
                )
        names = (column(table, name, "question") for name, _, _ in fields)
        self.columns = tuple(dict.fromkeys(names))
        self.pieces = [(text, name) for text, name, _, _ in string.Formatter().parse(spec)]

    def render(self, fields: Mapping[str, Any]) -> str | None:
        """The question text, or None when every column it reads is empty."""
        values = {name: cell_text(fields.get(name)) for name in self.columns}
        if all(value is None for value in values.values()):
            return None
        if not self.template:
            return values[self.columns[0]]
        parts: list[str] = []
        for text, name in self.pieces:
            parts.append(text)
            if name is not None:
                parts.append(values[name] or "")
        return "".join(parts).strip()

    def describe(self) -> str:
        return f"template {self.spec!r}" if self.template else f"column {self.spec!r}"


def listing(table: Table) -> str:
    return ", ".join(table.columns) or "(none)"


def column(table: Table, name: str, role: str) -> str:
    """``name`` if ``table`` has that column, else a one-line error listing its columns."""
    if name in table.columns:
        return name
    raise DataError(
        f"{table.source} has no column {name!r} (the {role}); its columns: {listing(table)}",
        hint=f"pass -o task.{role}=COLUMN",
    )


def default_column(table: Table, chosen: str | None, candidates: Sequence[str], role: str) -> str:
    """The column named by the option, else the first of ``candidates`` present (any case)."""
    if chosen is not None:
        return chosen
    lowered = {name.lower(): name for name in reversed(table.columns)}
    for candidate in candidates:
        if candidate in table.columns:
            return candidate
        if candidate in lowered:
            return lowered[candidate]
    raise DataError(
        f"{table.source} has no {role} column ({' or '.join(candidates)}); its columns: "
        f"{listing(table)}",
        hint=f"name it with -o task.{role}=COLUMN",
    )


@dataclass(frozen=True)
class Record:
    """One usable row: its question, raw answer and split-column value."""

    row: Row
    question: str
    answer: str
    split: str | None


def _rows_text(rows: Sequence[Row], texts: Sequence[str] = ()) -> str:
    shown = [
        row.where + (f" {quote_cell(texts[i])}" if texts else "")
        for i, row in enumerate(rows[:SHOWN_ROWS])
    ]
    more = f" and {len(rows) - SHOWN_ROWS} more" if len(rows) > SHOWN_ROWS else ""
    return ", ".join(shown) + more


def quote_cell(text: str) -> str:
    return repr(text if len(text) <= 30 else text[:30] + "...")


def reject_rows(
    bad: list[tuple[Row, str]], problem: str, table: Table, options: DataFileOptions, fix: str
) -> None:
    """Bad rows are a one-line error naming them (the first few), or, with
    ``skip_bad_rows``, left out with one warning."""
    if not bad:
        return
    rows = [row for row, _ in bad]
    texts = [text for _, text in bad]
    named = _rows_text(rows, texts if any(texts) else ())
    if options.skip_bad_rows:
        warnings.warn(
            BadRowsSkipped(f"{table.source}: skipped {len(rows)} row(s) {problem}: {named}"),
            stacklevel=3,
        )
        return
    raise DataError(
        f"{table.source}: {len(rows)} row(s) {problem}: {named}",
        hint=f"{fix}, or pass -o skip_bad_rows=true to skip them",
    )


def read_records(table: Table, options: DataFileOptions) -> tuple[list[Record], Question, str]:
    """The rows with a question and an answer (bad rows: an error, or skipped on request)."""
    answer = column(
        table, default_column(table, options.answer, ANSWER_COLUMNS, "answer"), "answer"
    )
    question = Question(
        default_column(table, options.question, QUESTION_COLUMNS, "question"), table
    )
    split = column(table, options.split, "split") if options.split is not None else None
    records: list[Record] = []
    no_question: list[tuple[Row, str]] = []
    no_answer: list[tuple[Row, str]] = []
    for row in table.rows:
        text = question.render(row.fields)
        gold = cell_text(row.fields.get(answer))
        if text is None:
            no_question.append((row, ""))
        elif gold is None:
            no_answer.append((row, ""))
        else:
            value = cell_text(row.fields.get(split)) if split is not None else None
            records.append(Record(row, text, gold.strip(), value))
    reject_rows(no_question, f"with an empty question ({question.describe()})", table, options,
                "fill them in or remove them")  # fmt: skip
    reject_rows(no_answer, f"with an empty answer (column {answer!r})", table, options,
                "fill them in or remove them")  # fmt: skip
    if not records:
        raise DataError(f"{table.source} has no row with both a question and an answer",
                        hint="check the question and answer columns")  # fmt: skip
    return records, question, answer


def answer_spec(records: Sequence[Record], options: DataFileOptions, table: Table) -> AnswerSpec:
    """The answer type: as asked, else detected from the answers (with the reason)."""
    if options.options is not None:
        return AnswerSpec("choice", "the labels given by options", options.options)
    kind = options.answer_type
    if kind in ("yesno", "number", "text"):
        return AnswerSpec(kind, "asked with answer_type")
    answers = [r.answer for r in records]
    labels = canonical_labels(answers)
    if len(labels) < 2:
        raise DataError(
            f"{table.source}: every answer is {next(iter(labels.values()))!r} ({len(answers)} "
            "rows); a task needs at least two different answers",
            hint="check the answer column (-o task.answer=COLUMN)",
        )
    if kind == "choice":
        reason = f"asked with answer_type; {len(labels)} distinct labels in {len(answers)} rows"
        return AnswerSpec("choice", reason, ordered_labels(labels.values()))
    return detect(answers)


def gold_answers(
    records: Sequence[Record], spec: AnswerSpec, answers: AnswerFormat, table: Table,
    options: DataFileOptions,
) -> list[tuple[Record, str]]:  # fmt: skip
    """Each record with its gold answer normalized as a parsed answer would be; answers the
    type cannot read are an error naming their rows (or skipped on request)."""
    good: list[tuple[Record, str]] = []
    bad: list[tuple[Row, str]] = []
    for record in records:
        gold = answers.normalize(record.answer)
        if gold is None:
            bad.append((record.row, record.answer))
        else:
            good.append((record, gold))
    what = {
        "number": ("that are not numbers", "fix them, or pass -o task.answer_type=text"),
        "yesno": ("that are not Yes or No", "fix them, or pass -o task.answer_type=choice"),
        "text": ("with no answer text", "fill them in"),
        "choice": (
            f"whose answer is not one of the labels {', '.join(spec.labels)}",
            "fix them, or list every label with -o task.options=a,b,c",
        ),
    }[spec.kind]
    reject_rows(bad, what[0], table, options, what[1])
    return good


def load_table(table: Table, options: DataFileOptions, slug: str) -> Loaded:
    """Read, check, type and split a table into examples (see the module docstring)."""
    records, question, answer_column = read_records(table, options)
    spec = answer_spec(records, options, table)
    answers = spec.answer_format()
    closed: tuple[str, ...] = ()
    if isinstance(answers, Labels):
        closed = answers.labels
    elif isinstance(answers, Binary):
        closed = answers.words
    examples: list[Example] = []
    where: dict[str, Record] = {}
    for record, gold in gold_answers(records, spec, answers, table, options):
        example = Example(f"{slug}/{record.row.index + 1}", record.question, gold, closed)
        examples.append(example)
        where[example.id] = record
    splits, origin = assign_splits(table, examples, where, options)
    warn_repeated_questions(splits, table.source)
    facts: dict[str, Any] = {
        "data": table.source,
        "rows": len(table.rows),
        "question": question.describe(),
        "answer": f"column {answer_column!r}",
        "answer_type": spec.kind,
        "answer_type_reason": spec.reason,
    }
    if closed:
        facts["labels"] = list(closed)
    facts["splits_from"] = origin
    return Loaded(splits, answers, facts)


def assign_splits(
    table: Table, examples: list[Example], where: dict[str, Record], options: DataFileOptions
) -> tuple[Splits, str]:
    """The splits and where they came from: the split column, the source's own splits, or a
    seeded shuffle."""
    if options.split is not None:
        parts: dict[str, list[Example]] = {"train": [], "dev": [], "test": []}
        bad: list[tuple[Row, str]] = []
        for example in examples:
            value = where[example.id].split or ""
            split = split_of(value)
            if split is None:
                bad.append((where[example.id].row, value))
            else:
                parts[split].append(example)
        if bad:
            rows = _rows_text([row for row, _ in bad], [value for _, value in bad])
            raise DataError(
                f"{table.source}: {len(bad)} row(s) with a bad value in the split column "
                f"{options.split!r}: {rows}",
                hint="write train, dev (or validation, val) or test in every row",
            )
        for needed in ("train", "test"):
            if not parts[needed]:
                raise DataError(
                    f"{table.source}: no row of the split column {options.split!r} says {needed}",
                    hint=f"mark some rows {needed}, or drop -o task.split to split by size",
                )
        return from_parts(parts, options, table.source), f"column {options.split!r}"
    own = _own_parts(table, examples, where)
    if own is not None:
        names = ", ".join(name for name in table.parts if split_of(name) is not None)
        return from_parts(own, options, table.source), f"the dataset's splits ({names})"
    seed = options.split_seed if options.split_seed is not None else 0
    return carve_all(examples, options, table.source), f"a seeded shuffle (split_seed={seed})"


def _own_parts(
    table: Table, examples: list[Example], where: dict[str, Record]
) -> dict[str, list[Example]] | None:
    """A hub dataset's own train/dev/test parts when it has train and test, else None."""
    part_of = {row.index: name for name, part in table.parts.items() for row in part}
    parts: dict[str, list[Example]] = {}
    for example in examples:
        split = split_of(part_of[where[example.id].row.index])
        if split is not None:
            parts.setdefault(split, []).append(example)
    return parts if "train" in parts and "test" in parts else None
