"""One process per run directory: an advisory lock on ``RUN/.lock`` taken before any model loads.

The lock is ``flock``-based, so the operating system drops it when its process dies: a stale lock
of a killed run never blocks a resume. The file keeps the holder's pid for the error message.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

from promptopt.errors import PromptoptError

LOCK_NAME = ".lock"


class RunLock:
    """An exclusive lock on a run directory; :meth:`acquire` fails at once if it is held."""

    def __init__(self, directory: Path, *, what: str = "run") -> None:
        self.directory = directory
        #: what the directory holds, for the error message (``run``, ``study``)
        self.what = what
        self.path = directory / LOCK_NAME
        self._handle: IO[str] | None = None
        self.created_directory = False

    def acquire(self) -> RunLock:
        """Take the lock (creating the directory if needed); a one-line error names the
        process that holds it."""
        try:
            import fcntl
        except ImportError:  # pragma: no cover - no flock on this platform: no locking
            return self
        try:
            if not self.directory.exists():
                self.directory.mkdir(parents=True)
                self.created_directory = True
            handle = self.path.open("a+", encoding="utf-8")
        except OSError as exc:
            where = "run directory" if self.what == "run" else self.what
            raise PromptoptError(
                f"cannot lock {where} {str(self.directory)!r} ({exc.strerror or exc})",
                hint=f"make {str(self.directory)!r} writable (or free space), then try again",
            ) from None
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            where = "run directory" if self.what == "run" else self.what
            raise PromptoptError(
                f"{where} {str(self.directory)!r} is in use by process {holder}",
                hint=f"wait for that {self.what} to finish (or stop it), then try again",
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._handle = handle
        return self

    def release(self, *, remove_if_empty: bool = False) -> None:
        """Drop the lock; with ``remove_if_empty`` also delete the lock file and a directory
        this lock created when nothing else was written there (a run that never started)."""
        if self._handle is not None:
            self._handle.close()  # closing the descriptor releases the flock
            self._handle = None
        if remove_if_empty:
            others = [p for p in self.directory.iterdir() if p.name != LOCK_NAME]
            if not others:
                self.path.unlink(missing_ok=True)
                if self.created_directory:
                    self.directory.rmdir()

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
