"""Tasks over the user's own data: ``--task reviews.csv`` (also .tsv, .jsonl, .json, .parquet)
or ``--task hf:ORG/NAME[:CONFIG]``. Each reference resolves to a task class made for it, whose
identity is the data's SHA-256; its options name the question (a column or a template over
columns), the answer column, the answer type (detected from the data when not given) and the
split column. See ``docs/write-a-task-plugin.md`` ("Your own data")."""

from __future__ import annotations

import hashlib
import re
import string
import warnings
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from pydantic import field_validator, model_validator

from promptopt.components import ComponentOptions
from promptopt.errors import DataError, PromptoptError
from promptopt.filehash import file_sha256
from promptopt.rundir import task_folder_name
from promptopt.types import DATA_FILE_SUFFIXES, AnswerType, Example
from promptopt_tasks.answerdetect import (
    AnswerKind,
    AnswerSpec,
    canonical_labels,
    detect,
    ordered_labels,
)
from promptopt_tasks.answers import AnswerFormat, Binary, Labels, label_key
from promptopt_tasks.base import BenchmarkTask, Splits, TaskOptions
from promptopt_tasks.extractors import extractor_text
from promptopt_tasks.rows import BadRowsSkipped, Row
from promptopt_tasks.tables import Table, cell_text, read_file, read_hub
from promptopt_tasks.tablesplits import carve_all, from_parts, split_of, warn_repeated_questions

#: Columns taken as the question / the answer when none is named, first present wins.
QUESTION_COLUMNS = ("question", "input", "text", "prompt")
ANSWER_COLUMNS = ("answer", "target", "label", "output")
#: How many bad rows an error names.
SHOWN_ROWS = 5


class DataFileOptions(TaskOptions):
    """Options of a task over a data file or a hub dataset (besides the sizes and seed of
    every task): which columns hold the question and the answer, the answer type, the split."""

    #: A column, or a template over columns such as ``"{premise}\nQuestion: {hypothesis}"``.
    question: str | None = None
    #: The answer column.
    answer: str | None = None
    #: choice, yesno, number or text; None: detected from the answers.
    answer_type: AnswerKind | None = None
    #: The labels of a ``choice`` answer, comma-separated ("a,b,c") or a list.
    options: tuple[str, ...] | None = None
    #: A column holding train/dev/test (dev also as validation or val) for each row.
    split: str | None = None
    #: The answer extractor's text, instead of the answer type's own.
    extractor: str | None = None

    @field_validator("options", mode="before")
    @classmethod
    def _labels(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, (list, tuple)):
            labels = tuple(str(v).strip() for v in value if str(v).strip())
            keys = [label_key(label) for label in labels]
            if len(labels) < 2 or len(set(keys)) != len(keys):
                raise ValueError("options must name two or more different labels, e.g. a,b,c")
            return labels
        return value

    @model_validator(mode="after")
    def _options_are_choices(self) -> DataFileOptions:
        if self.options is not None and self.answer_type not in (None, "choice"):
            raise ValueError(f"options are labels of answer_type=choice, not {self.answer_type}")
        return self


@dataclass(frozen=True)
class Loaded:
    """A table read into examples: the splits, how answers read, and what to tell users."""

    splits: Splits
    answers: AnswerFormat
    facts: dict[str, Any]


class TableTask(BenchmarkTask):
    """A task over the rows of a table (a data file or a hub dataset); subclasses made by
    :func:`resolve` say where the table is and what its content hash is."""

    Options = DataFileOptions
    options: DataFileOptions
    answer_type: ClassVar[AnswerType] = AnswerType.FREE_TEXT  # the real one depends on options
    #: The SHA-256 of the data (a file's bytes; a hub dataset's rows).
    sha256: ClassVar[str] = ""
    #: A short name for example ids: the file's stem, or the hub dataset's name.
    slug: ClassVar[str] = ""

    def __init__(self, options: ComponentOptions | None = None) -> None:
        super().__init__(options)
        self._loaded: Loaded | None = None

    @classmethod
    def identity(cls) -> dict[str, Any]:
        return {"sha256": cls.sha256}

    @abstractmethod
    def read_table(self) -> Table:
        """The rows of the data, exactly the content :attr:`sha256` names."""

    # ------------------------------------------------------------------ loading

    def load_splits(self) -> Splits:
        return self.loaded().splits

    def load_local(self, root: Path) -> Splits:
        return self.load_splits()  # a data file needs no data directory

    def load_hub(self) -> Splits:
        return self.load_splits()

    def loaded(self) -> Loaded:
        """The data, read, checked and split once."""
        if self._loaded is None:
            self._loaded = load_table(self.read_table(), self.options, self.slug)
        return self._loaded

    def describe(self) -> dict[str, Any]:
        return dict(self.loaded().facts)

    # ------------------------------------------------------------------ answers

    def extractor(self, example: Example) -> str:
        if self.options.extractor is not None:
            return self.options.extractor
        return extractor_text(self.loaded().answers, example.options)

    def parse(self, text: str) -> str | None:
        return self.loaded().answers.parse(text)

    def continuation(self, answer: str) -> str:
        return self.loaded().answers.continuation(answer)

    def is_correct(self, predicted: str | None, example: Example) -> bool:
        """Exact match after normalizing the prediction like the gold answer."""
        if predicted is None:
            return False
        return self.loaded().answers.normalize(predicted) == example.answer


class DataFileTask(TableTask):
    """A task over a CSV, TSV, JSON-lines, JSON or Parquet file."""

    #: The file, resolved to an absolute path when the task was resolved.
    path: ClassVar[Path]

    def read_table(self) -> Table:
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            raise DataError(
                f"cannot read task file {self.name!r} ({exc.strerror or exc})",
                hint="check that the file exists and is readable",
            ) from None
        if hashlib.sha256(data).hexdigest() != self.sha256:
            raise DataError(
                f"task file {self.name!r} changed while promptopt was using it",
                hint="wait until it is written completely, then run the command again",
            )
        return read_file(data, self.path.suffix, self.name)


class HubTableTask(TableTask):
    """A task over a dataset of the Hugging Face hub, read with ``datasets``."""

    dataset: ClassVar[str] = ""
    config: ClassVar[str | None] = None

    def read_table(self) -> Table:
        return read_hub(self.dataset, self.config, self.name)


# --------------------------------------------------------------------------- resolution

_CLASSES: dict[tuple[str, str], type[TableTask]] = {}
_HUB_REF = re.compile(r"hf:(?P<dataset>[\w.-]+(?:/[\w.-]+)?)(?::(?P<config>[\w.-]+))?")


def resolve(ref: str) -> type[TableTask] | None:
    """The task class for a data file or ``hf:`` reference; None for anything else (a name
    nobody registered). A reference that is data but unusable is a one-line error."""
    if ref.startswith("hf:"):
        return _hub_class(ref)
    path = Path(ref).expanduser()
    suffix = path.suffix.lower()
    if suffix not in DATA_FILE_SUFFIXES:
        if path.is_file():
            raise DataError(
                f"task file {ref!r} has an unknown data format {suffix or '(no suffix)'!r}",
                hint=f"save it as {', '.join(DATA_FILE_SUFFIXES)}",
            )
        return None
    if not path.is_file():
        problem = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise DataError(
            f"task file {ref!r} {problem} (looked at {path.resolve()})",
            hint="check the path; data files end in " + ", ".join(DATA_FILE_SUFFIXES),
        )
    resolved = path.resolve()
    sha = file_sha256(resolved)
    key = (ref, f"{resolved}\x00{sha}")
    if key not in _CLASSES:
        _CLASSES[key] = _make_class(
            DataFileTask,
            ref,
            sha,
            task_folder_name(ref),
            f"your data in {resolved.name}",
            path=resolved,
        )
    return _CLASSES[key]


def _hub_class(ref: str) -> type[TableTask]:
    match = _HUB_REF.fullmatch(ref)
    if match is None:
        raise PromptoptError(
            f"task {ref!r} is not a hub dataset reference",
            hint="write hf:ORG/NAME, or hf:ORG/NAME:CONFIG for one configuration",
        )
    dataset, config = match["dataset"], match["config"]
    table = read_hub(dataset, config, ref)
    sha = _rows_sha256(table)
    key = (ref, sha)
    if key not in _CLASSES:
        slug = task_folder_name(dataset.rpartition("/")[2] + (f"-{config}" if config else ""))
        _CLASSES[key] = _make_class(
            HubTableTask, ref, sha, slug, f"hub dataset {ref[3:]}", dataset=dataset, config=config
        )
    return _CLASSES[key]


def _rows_sha256(table: Table) -> str:
    """A hub dataset's content hash: its splits and rows as canonical JSON."""
    from promptopt.evalcache import canonical_json

    digest = hashlib.sha256()
    for split, rows in table.parts.items():
        digest.update(canonical_json([split, len(rows)]).encode("utf-8"))
        for row in rows:
            digest.update(canonical_json(row.fields).encode("utf-8"))
    return digest.hexdigest()


def _make_class(
    base: type[TableTask], ref: str, sha: str, slug: str, what: str, **attributes: Any
) -> type[TableTask]:
    namespace = {
        "__module__": __name__,
        "__doc__": f"The task over {what}.",
        "name": ref,
        "description": f"{what} (sha256 {sha[:12]})",
        "sha256": sha,
        "slug": slug,
        **attributes,
    }
    class_name = base.__name__ + "_" + re.sub(r"\W", "_", slug)
    return type(class_name, (base,), namespace)


# --------------------------------------------------------------------------- rows -> examples


class Question:
    """The question of a row: one column, or a template over columns (``"{premise}\nQ:
    {hypothesis}"``, filled with ``str.format_map``; fields are plain column names)."""

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

    def render(self, fields: Mapping[str, Any]) -> str | None:
        """The question text, or None when every column it reads is empty."""
        values = {name: cell_text(fields.get(name)) for name in self.columns}
        if all(value is None for value in values.values()):
            return None
        if not self.template:
            return values[self.columns[0]]
        return self.spec.format_map({k: v or "" for k, v in values.items()}).strip()

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
