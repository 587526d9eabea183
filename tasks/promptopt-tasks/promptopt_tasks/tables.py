"""Read a user's data into rows with column names: a CSV, TSV, JSON-lines, JSON or Parquet file,
or a dataset of the Hugging Face hub. pyarrow and ``datasets`` are imported only to read what
needs them. Every problem is a one-line error naming the file and the fix.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from typing import Any

from promptopt.errors import DataError, PromptoptError
from promptopt_tasks.rows import Row


@dataclass(frozen=True)
class Table:
    """The rows of one data source and its columns (first-seen order). ``parts`` holds the
    source's own splits by name (a hub dataset's train/validation/test); a file has one part,
    ``""``. ``Row.where`` says where a row is, for messages: ``line 7`` or ``row 7``."""

    source: str
    columns: tuple[str, ...]
    parts: dict[str, list[Row]] = field(default_factory=dict)

    @property
    def rows(self) -> list[Row]:
        """Every row, part after part."""
        return [row for rows in self.parts.values() for row in rows]


def cell_text(value: Any) -> str | None:
    """A cell as text: None for a missing value (None, NaN, blank text); integral floats without
    ".0" (a Parquet column of 0.0/1.0 labels reads "0"/"1"); lists and objects as JSON."""
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, ensure_ascii=False, default=str)
    text = str(value)
    return text if text.strip() else None


def _decode(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{source} is not UTF-8 text (byte {data[exc.start]:#04x} at offset {exc.start})",
            hint="re-save it as UTF-8 (in a spreadsheet: CSV UTF-8)",
        ) from None


def _empty(source: str, what: str) -> DataError:
    return DataError(f"{source} {what}", hint="add a header line and one row per example")


def _columns(rows: list[Row]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row.fields))
    return tuple(seen)


def read_delimited(data: bytes, source: str, delimiter: str) -> Table:
    """A CSV or TSV file with a header line; a record may span lines (quoted new lines) and is
    named by its first line."""
    text = _decode(data, source)
    if not text.strip():
        raise _empty(source, "is empty")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = [name.strip() for name in next(reader)]
    except csv.Error as exc:
        raise DataError(
            f"{source} line 1: unreadable header ({exc})", hint="fix the file"
        ) from None
    duplicated = sorted({name for name in header if name and header.count(name) > 1})
    if duplicated:
        raise DataError(
            f"{source}: column {duplicated[0]!r} appears twice in the header",
            hint="give every column its own name",
        )
    rows: list[Row] = []
    start = reader.line_num + 1
    while True:
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise DataError(f"{source} line {start}: malformed ({exc})", hint="fix it") from None
        if any(cell.strip() for cell in record):
            if len(record) > len(header):
                kind = "tabs" if delimiter == "\t" else "commas"
                raise DataError(
                    f"{source} line {start} has {len(record)} fields but the header has "
                    f"{len(header)}",
                    hint=f"quote fields that contain {kind}, or fix the line",
                )
            fields = dict(zip(header, record, strict=False))
            rows.append(Row(len(rows), f"line {start}", fields))
        start = reader.line_num + 1
    if not rows:
        raise _empty(source, "has a header but no data rows")
    return Table(source, tuple(header), {"": rows})


def read_jsonl(data: bytes, source: str) -> Table:
    """A JSON-lines file: one JSON object per line (blank lines skipped)."""
    rows: list[Row] = []
    for number, line in enumerate(_decode(data, source).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{source} line {number}: not JSON ({exc.msg})", hint="fix the line"
            ) from None
        if not isinstance(value, dict):
            raise DataError(
                f"{source} line {number}: a JSON {type(value).__name__}, not an object",
                hint='write one object per line, e.g. {"question": "...", "answer": "..."}',
            )
        rows.append(Row(len(rows), f"line {number}", value))
    if not rows:
        raise _empty(source, "is empty")
    return Table(source, _columns(rows), {"": rows})


def read_json(data: bytes, source: str) -> Table:
    """A JSON file: a list of objects, or an object holding exactly one list of objects (such
    as ``{"examples": [...]}``)."""
    text = _decode(data, source)
    if not text.strip():
        raise _empty(source, "is empty")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{source} line {exc.lineno}: not JSON ({exc.msg})", hint="fix the file"
        ) from None
    if isinstance(value, dict):
        lists = [v for v in value.values() if isinstance(v, list) and v and isinstance(v[0], dict)]
        value = lists[0] if len(lists) == 1 else value
    shape = 'write a list of objects: [{"question": "...", "answer": "..."}, ...]'
    if not isinstance(value, list):
        raise DataError(f"{source} holds no list of examples", hint=shape)
    rows: list[Row] = []
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise DataError(f"{source} row {i + 1} is a JSON {type(item).__name__}", hint=shape)
        rows.append(Row(i, f"row {i + 1}", item))
    if not rows:
        raise _empty(source, "holds an empty list")
    return Table(source, _columns(rows), {"": rows})


def read_parquet(data: bytes, source: str) -> Table:
    """A Parquet file (read with pyarrow)."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise PromptoptError(
            f"reading {source} needs pyarrow, which is not installed",
            hint="pip install 'promptopt-tasks[parquet]', or save the data as CSV or JSON lines",
        ) from None
    try:
        table = pq.read_table(pa.BufferReader(data))
    except (pa.ArrowException, OSError) as exc:
        reason = " ".join(str(exc).split())[:120]
        raise DataError(
            f"{source} is not a readable Parquet file ({reason})", hint="re-export it"
        ) from None
    records = table.to_pylist()
    if not records:
        raise _empty(source, "has no rows")
    rows = [Row(i, f"row {i + 1}", record) for i, record in enumerate(records)]
    return Table(source, tuple(table.column_names), {"": rows})


#: How each file suffix is read.
READERS = {
    ".csv": lambda data, source: read_delimited(data, source, ","),
    ".tsv": lambda data, source: read_delimited(data, source, "\t"),
    ".jsonl": read_jsonl,
    ".json": read_json,
    ".parquet": read_parquet,
}


def read_file(data: bytes, suffix: str, source: str) -> Table:
    """The rows of a data file's bytes ``data``, read by its ``suffix``."""
    reader = READERS.get(suffix.lower())
    if reader is None:
        raise DataError(
            f"{source}: unknown data format {suffix or '(no suffix)'!r}",
            hint=f"save it as {', '.join(READERS)}",
        )
    table: Table = reader(data, source)
    return table


# --------------------------------------------------------------------------- the hub

_HUB_TABLES: dict[tuple[str, str | None], Table] = {}


def read_hub(dataset: str, config: str | None, source: str) -> Table:
    """Every split of the hub dataset ``dataset`` (configuration ``config``), loaded with
    ``datasets`` (offline, ``HF_HUB_OFFLINE=1``: from its cache) once per process. Class-label
    columns read as their label names."""
    key = (dataset, config)
    if key not in _HUB_TABLES:
        _HUB_TABLES[key] = _load_hub(dataset, config, source)
    return _HUB_TABLES[key]


def _load_hub(dataset: str, config: str | None, source: str) -> Table:
    from promptopt_tasks.sources import _hub_unresolvable

    fix = (
        "check the name (hf:ORG/NAME or hf:ORG/NAME:CONFIG); offline, the dataset must be in "
        "the datasets cache, so load it once online"
    )
    try:
        import datasets
    except ImportError:
        raise PromptoptError(
            f"{source} needs the `datasets` package, which is not installed",
            hint="pip install 'promptopt-tasks[hub]'",
        ) from None
    verbosity = datasets.logging.get_verbosity()
    bars = datasets.utils.are_progress_bars_disabled()
    datasets.logging.set_verbosity_error()
    datasets.utils.disable_progress_bars()
    try:
        unresolvable = _hub_unresolvable()
        if unresolvable is not None:
            raise ConnectionError(unresolvable)
        loaded = datasets.load_dataset(dataset, config)
    except Exception as exc:  # offline, missing, gated, a bad config: all one line to users
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise PromptoptError(f"{source} could not be loaded ({reason})", hint=fix) from None
    finally:
        datasets.logging.set_verbosity(verbosity)
        if not bars:
            datasets.utils.enable_progress_bars()
    parts: dict[str, list[Row]] = {}
    count = 0
    for split, part in loaded.items():
        names = {
            column: feature.names
            for column, feature in part.features.items()
            if isinstance(feature, datasets.ClassLabel)
        }
        rows: list[Row] = []
        for i, record in enumerate(part):
            fields = dict(record)
            for column, labels in names.items():
                value = fields.get(column)
                ok = isinstance(value, int) and 0 <= value < len(labels)
                fields[column] = labels[value] if ok else None  # -1: no label (hidden test)
            rows.append(Row(count, f"{split} row {i + 1}", fields))
            count += 1
        parts[str(split)] = rows
    if not count:
        raise PromptoptError(f"{source} has no rows", hint=fix)
    return Table(source, _columns([row for rows in parts.values() for row in rows]), parts)
