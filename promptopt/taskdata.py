"""In-memory task data for the Python API: a pandas DataFrame or a list of dicts becomes a JSONL
file named by its content hash under the cache folder, so it is a data-file task like any other
(same loading, same errors, same identity: an edited table is a new file, never stale results)."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from promptopt.errors import DataError, PromptoptError

#: The folder (under :func:`promptopt.filehash.cache_home`) holding in-memory tables as files.
TASKS_FOLDER = "tasks"

#: What ``task=`` accepts in the Python API: a task name or data-file path (``str`` or
#: ``Path``), a pandas DataFrame, or a list of dicts (one per row).
TaskLike = Any


def task_reference(task: TaskLike) -> str:
    """The ``--task`` string for ``task``: names and paths as given, tables as a cached file."""
    if isinstance(task, Path):
        return str(task)
    if isinstance(task, str):
        if not task.strip():
            raise PromptoptError("task is empty", hint="pass a task name, a data file or a table")
        return task
    records = _records(task)
    return str(write_records(records))


def _records(task: Any) -> list[dict[str, Any]]:
    """The rows of a DataFrame or a list of dicts, as plain JSON-ready dicts."""
    if _is_dataframe(task):
        rows = task.to_dict(orient="records")
    elif isinstance(task, Sequence) and not isinstance(task, str | bytes):
        rows = list(task)
    else:
        raise PromptoptError(
            f"task of type {type(task).__name__} is not supported",
            hint="pass a task name, a data-file path, a pandas DataFrame or a list of dicts",
        )
    if not rows:
        raise DataError("the task table has no rows", hint="pass at least a few examples")
    records: list[dict[str, Any]] = []
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, Mapping):
            raise DataError(
                f"row {number} of the task table is a {type(row).__name__}, not a dict",
                hint="pass one dict per example, e.g. {'question': ..., 'answer': ...}",
            )
        records.append({str(key): _plain(value) for key, value in row.items()})
    return records


def _is_dataframe(value: Any) -> bool:
    """True for a pandas DataFrame, without importing pandas when it is not loaded."""
    kind = type(value)
    return kind.__name__ == "DataFrame" and kind.__module__.startswith("pandas")


def _plain(value: Any) -> Any:
    """A JSON value for one cell: numpy scalars become Python numbers, missing values None."""
    if hasattr(value, "item") and callable(value.item) and not isinstance(value, list | dict):
        try:
            value = value.item()
        except (TypeError, ValueError):
            value = str(value)
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def write_records(records: list[dict[str, Any]]) -> Path:
    """Write ``records`` as JSONL under the cache folder, named by the SHA-256 of that text; an
    existing file of that name already holds exactly these rows and is reused."""
    from promptopt.filehash import cache_home
    from promptopt.outputs import write_text

    text = "".join(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n" for row in records)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    path = cache_home() / TASKS_FOLDER / f"{digest}.jsonl"
    if not path.is_file():
        write_text(
            path,
            text,
            hint="the task table is written to the cache folder first: free space there, or "
            "set PROMPTOPT_CACHE_DIR to a writable folder",
        )
    return path


def absolute_data_file(task: str) -> str:
    """A data-file task as an absolute path (like ``--data-dir``), so the study's runs find it
    whatever folder a rerun or a Ray worker starts in; other tasks as given."""
    from promptopt.rundir import is_data_reference

    if task.startswith("hf:") or not is_data_reference(task):
        return task
    return str(Path(task).expanduser().resolve())
