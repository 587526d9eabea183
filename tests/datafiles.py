"""Real data files for the data-file task tests: rows written as CSV, TSV, JSON lines, JSON or
Parquet, and the task class promptopt resolves for a file."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

FORMATS = (".csv", ".tsv", ".jsonl", ".json", ".parquet")


def sports_rows(count: int = 120) -> list[dict[str, Any]]:
    """``count`` sentences with a plausible/implausible verdict, every sentence distinct."""
    sports = ("scored a touchdown", "hit a home run", "served an ace", "sank a free throw")
    games = ("in the fourth quarter", "in the ninth inning", "at match point", "in overtime")
    rows = []
    for i in range(count):
        sport, game = sports[i % 4], games[(i // 4) % 4]
        verdict = "plausible" if (i % 4) == ((i // 4) % 4) else "implausible"
        rows.append({"sentence": f"Player {i} {sport} {game}.", "verdict": verdict})
    return rows


def write_rows(path: Path, rows: Sequence[dict[str, Any]]) -> Path:
    """Write ``rows`` in the format ``path``'s suffix names (columns of the first row)."""
    suffix = path.suffix.lower()
    columns = list(rows[0]) if rows else []
    if suffix in (".csv", ".tsv"):
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, columns, delimiter="\t" if suffix == ".tsv" else ",")
            writer.writeheader()
            writer.writerows(rows)
    elif suffix == ".jsonl":
        path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    elif suffix == ".json":
        path.write_text(json.dumps(list(rows), indent=1), encoding="utf-8")
    elif suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(list(rows)), path)
    else:
        raise ValueError(f"no writer for {suffix}")
    return path


def resolve(ref: str | Path) -> Any:
    """The task class the installed plugins resolve ``ref`` to (a fresh registry)."""
    from promptopt.registry import Registry

    return Registry.from_plugin_manager().task(str(ref))


def load(ref: str | Path, **options: Any) -> Any:
    """The task over ``ref`` with ``options``, as ``-o task.KEY=VALUE`` would give them (a bad
    value is the same one-line error)."""
    from promptopt.options import Setting, make_options

    cls = resolve(ref)
    settings = {key: Setting(value, "user") for key, value in options.items()}
    return cls(make_options(cls, settings, "task"))


def split_table(task: Any) -> dict[str, list[tuple[str, str]]]:
    """Every split of ``task`` as (question, answer) pairs."""
    return {
        split: [(ex.question, ex.answer) for ex in task.examples(split)]
        for split in ("train", "dev", "test")
    }
