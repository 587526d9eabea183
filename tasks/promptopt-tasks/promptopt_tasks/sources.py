"""Where task data comes from: a local data directory, or the Hugging Face hub (lazily).

Local layout: ``<data_dir>/folio/...``, ``<data_dir>/bbh/<task>.json``, ``<data_dir>/gsm8k/...``.
The directory is the ``data_dir`` option (CLI ``--data-dir``) or ``PROMPTOPT_DATA_DIR``.
"""

from __future__ import annotations

import csv
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from promptopt.errors import DataError, PromptoptError
from promptopt_tasks.rows import Row

DATA_DIR_ENV = "PROMPTOPT_DATA_DIR"


def data_root(data_dir: Path | None) -> Path | None:
    """The local data directory: the option, else ``$PROMPTOPT_DATA_DIR``, else None (hub)."""
    if data_dir is None:
        env = os.environ.get(DATA_DIR_ENV, "").strip()
        if not env:
            return None
        data_dir, origin = Path(env), DATA_DIR_ENV
    else:
        origin = "--data-dir"
    data_dir = data_dir.expanduser()
    if not data_dir.is_dir():
        problem = "is a file, not a folder" if data_dir.exists() else "does not exist"
        raise DataError(
            f"data directory {str(data_dir)!r} (from {origin}) {problem}",
            hint="point --data-dir or PROMPTOPT_DATA_DIR at a folder holding folio/, bbh/, gsm8k/",
        )
    return data_dir


def missing_file(task: str, expected: str, folder: Path) -> DataError:
    """The error for a data directory that lacks the files of ``task``."""
    return DataError(
        f"task {task!r}: {expected} not found in {folder}",
        hint="add the files there, or unset --data-dir/PROMPTOPT_DATA_DIR to use the hub",
    )


def _open_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path} is not UTF-8 text ({exc.reason})", hint="re-save it as UTF-8"
        ) from None
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}", hint="check the path") from None


def read_csv(path: Path) -> list[Row]:
    """Rows of a CSV (or, by suffix, TSV) file with a header; ``where`` names the record's
    first line (records may span lines)."""
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    lines = _open_text(path).splitlines(keepends=True)
    reader = csv.reader(lines, delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        return []
    except csv.Error as exc:
        raise DataError(f"{path}:1: unreadable header ({exc})", hint="fix the file") from None
    rows: list[Row] = []
    start = reader.line_num + 1
    while True:
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise DataError(f"{path}:{start}: malformed CSV ({exc})", hint="fix the file") from None
        if any(cell.strip() for cell in record):
            if len(record) > len(header):
                fields: dict[str, Any] = {"__extra__": record[len(header) :]}
            else:
                fields = {}
            fields.update(zip(header, record, strict=False))
            rows.append(Row(len(rows), f"{path}:{start}", fields))
        start = reader.line_num + 1
    return rows


def read_jsonl(path: Path) -> list[Row]:
    """Rows of a JSON-lines file; a line that is not a JSON object is a DataError."""
    rows: list[Row] = []
    for number, line in enumerate(_open_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{number}: not JSON ({exc.msg})", hint="fix the line") from None
        if not isinstance(value, dict):
            raise DataError(f"{path}:{number}: expected a JSON object", hint="fix the line")
        rows.append(Row(len(rows), f"{path}:{number}", value))
    return rows


def read_bbh_json(path: Path) -> list[Row]:
    """The ``examples`` of a BIG-Bench Hard task file; ``where`` is ``file examples[i]``."""
    try:
        data = json.loads(_open_text(path))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: not JSON ({exc.msg})", hint="fix the file") from None
    examples = data.get("examples") if isinstance(data, dict) else None
    if not isinstance(examples, list):
        raise DataError(f"{path}: no 'examples' list", hint="use a BBH task file")
    return [
        Row(i, f"{path} examples[{i}]", ex if isinstance(ex, dict) else {})
        for i, ex in enumerate(examples)
    ]


def _hub_unresolvable() -> str | None:
    """Why the hub is certainly unreachable (its host name does not resolve), or None. Saves
    the hub client's retries (about 25 s); skipped in offline mode, where ``datasets`` reads
    its local cache."""
    offline = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    if any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on") for v in offline):
        return None
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname
    if not host:
        return None
    try:
        socket.getaddrinfo(host, 443)
    except OSError:
        return f"cannot resolve {host}; offline?"
    return None


def _load_hub_split(hub_id: str, config: str | None, split: str) -> list[dict[str, Any]]:
    unresolvable = _hub_unresolvable()
    if unresolvable is not None:
        raise ConnectionError(unresolvable)
    import datasets

    dataset: Iterator[dict[str, Any]] = iter(datasets.load_dataset(hub_id, config, split=split))
    return list(dataset)


def hub_rows(task: str, hub_id: str, config: str | None, split: str, layout: str) -> list[Row]:
    """Rows of one split of a hub dataset, loaded with ``datasets`` (imported only here).
    Any failure (offline, not cached, gated, not installed) is one PromptoptError that names
    both ways to get the data."""
    where = f"{hub_id}" + (f" ({config})" if config else "") + f"[{split}]"
    try:
        records = _load_hub_split(hub_id, config, split)
    except Exception as exc:  # offline, missing, gated, not installed: all the same to users
        reason = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise PromptoptError(
            f"no data for task {task!r}: no data directory was given and the hub dataset "
            f"{where} could not be loaded ({reason})",
            hint=f"pass --data-dir DIR or set PROMPTOPT_DATA_DIR (expects {layout}), "
            f"or go online with the `datasets` package installed",
        ) from None
    return [Row(i, f"{where} row {i}", record) for i, record in enumerate(records)]
