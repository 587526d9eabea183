"""Output folders of commands that write reports (``eval --out``, ``transfer --out``): proven
writable before any evaluation work, and write failures reported as one line naming the file."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from promptopt.errors import PromptoptError


def reason(exc: OSError) -> str:
    """The operating system's words for a failed file operation (``No space left on device``)."""
    return exc.strerror or str(exc) or type(exc).__name__


def check_writable_dir(path: Path, flag: str) -> None:
    """Prove that files can be written in ``path`` (creating it for the test and removing what
    the test created), so a command fails before its work, not after; a one-line error naming
    ``flag`` and the folder otherwise."""
    created: list[Path] = []
    try:
        missing = [p for p in (path, *path.parents) if not p.exists()]
        for folder in reversed(missing):
            folder.mkdir()
            created.append(folder)
        if not path.is_dir():
            raise NotADirectoryError(20, "Not a directory", str(path))
        fd, probe = tempfile.mkstemp(prefix=".promptopt-write-check.", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise PromptoptError(
            f"cannot write to {flag} {str(path)!r} ({reason(exc)})",
            hint=f"pass a writable folder as {flag}",
        ) from None
    finally:
        for folder in reversed(created):
            with contextlib.suppress(OSError):
                folder.rmdir()


def guarded_write(path: Path, write: Callable[[], None], *, hint: str) -> None:
    """Run ``write`` (which writes ``path``); a failure (full disk, read-only folder, a folder
    in the way) is a one-line error naming the file, with ``hint`` saying what was kept."""
    try:
        write()
    except OSError as exc:
        raise PromptoptError(f"could not write {str(path)!r} ({reason(exc)})", hint=hint) from None


def write_text(path: Path, text: str, *, hint: str) -> None:
    """Write ``text`` to ``path`` atomically, failures as one line (see :func:`guarded_write`)."""
    from promptopt.rundir import atomic_write_text

    guarded_write(path, lambda: atomic_write_text(path, text), hint=hint)
