"""Progress bars with ETA for steps and generation (tqdm; PROMPTOPT_PROGRESS=0 turns them off)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol


class Bar(Protocol):
    def update(self, n: int = 1) -> Any: ...

    def set_postfix_str(self, s: str, refresh: bool = True) -> Any: ...


class _NullBar:
    def update(self, n: int = 1) -> None:
        return None

    def set_postfix_str(self, s: str, refresh: bool = True) -> None:
        return None


class Progress:
    """Makes nested progress bars; ``enabled=False`` makes silent ones."""

    def __init__(self, enabled: bool | None = None) -> None:
        if enabled is None:
            enabled = os.environ.get("PROMPTOPT_PROGRESS", "1") not in ("0", "false", "no")
        self.enabled = enabled
        self._depth = 0

    @contextmanager
    def bar(
        self, total: int | None, desc: str, unit: str = "it", initial: int = 0
    ) -> Iterator[Bar]:
        """A bar for ``total`` units of work; nested bars stack below their parent."""
        if not self.enabled:
            yield _NullBar()
            return
        from tqdm.auto import tqdm

        self._depth += 1
        terminal = sys.stderr.isatty()
        # In a log file (not a terminal) nested bars would write cursor-movement escapes and
        # every refresh would add a line: show only the outer bar, refreshed every 30 s.
        bar = tqdm(
            total=total,
            desc=desc,
            unit=unit,
            initial=initial,
            position=self._depth - 1 if terminal else None,
            leave=self._depth == 1,
            dynamic_ncols=terminal,
            disable=not terminal and self._depth > 1,
            mininterval=0.1 if terminal else 30.0,
        )
        try:
            yield bar
        finally:
            bar.close()
            self._depth -= 1
