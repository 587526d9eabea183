"""Rows read from data files or the hub, and how bad rows are reported (or skipped on request)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from promptopt.errors import DataError

T = TypeVar("T")

SKIP_HINT = "fix or remove the row, or pass -o skip_bad_rows=true to skip bad rows with a warning"


class BadRow(Exception):
    """Raised by a row converter: what is wrong with the row (the caller adds where it is)."""


class BadRowsSkipped(UserWarning):
    """Bad rows were skipped because the user set ``skip_bad_rows``."""


@dataclass(frozen=True)
class Row:
    """One record, its position among the source's records (for stable example ids) and
    where it came from (``file:line`` or ``hub-id[split] row N``) for error messages."""

    index: int
    where: str
    fields: Mapping[str, Any]

    def text(self, name: str) -> str:
        """A required non-empty string field."""
        value = self.fields.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            raise BadRow(f"missing field {name!r}")
        if not isinstance(value, str | int | float):
            raise BadRow(f"field {name!r} is a {type(value).__name__}, expected text")
        return str(value)


def convert_rows(rows: Iterable[Row], convert: Callable[[Row], T], *, skip_bad: bool) -> list[T]:
    """``convert`` every row; a bad row raises DataError naming it, unless ``skip_bad``, in
    which case it is left out and all skipped rows are reported in one warning."""
    converted: list[T] = []
    skipped: list[str] = []
    for row in rows:
        try:
            converted.append(convert(row))
        except BadRow as exc:
            if not skip_bad:
                raise DataError(f"bad row at {row.where}: {exc}", hint=SKIP_HINT) from None
            skipped.append(f"{row.where}: {exc}")
    if skipped:
        shown = "; ".join(skipped[:3]) + ("; ..." if len(skipped) > 3 else "")
        warnings.warn(BadRowsSkipped(f"skipped {len(skipped)} bad row(s): {shown}"), stacklevel=2)
    return converted
