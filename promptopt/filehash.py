"""Content hashes of (large) model files, memoized by ``(path, size, mtime_ns)`` so that a
reload does not read gigabytes again, while a replaced file (new mtime) is hashed afresh.

Shared by every backend that caches something derived from a model file (the llamacpp
plugin's quantized variants and evaluation fingerprints, the hf plugin's GGUF conversions).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

CACHE_ENV = "PROMPTOPT_CACHE_DIR"
_CHUNK = 1 << 22
#: In-process memo on top of the on-disk one: ``(path, size, mtime_ns) -> sha256``.
_MEMO: dict[tuple[str, int, int], str] = {}


def cache_home() -> Path:
    """promptopt's cache folder: ``$PROMPTOPT_CACHE_DIR``, else ``~/.cache/promptopt``."""
    base = os.environ.get(CACHE_ENV)
    return Path(base).expanduser() if base else Path.home() / ".cache" / "promptopt"


def file_sha256(path: str | Path) -> str:
    """SHA-256 hex digest of a file's bytes; memoized in memory and under
    ``cache_home()/hashes`` by (resolved path, size, mtime_ns). A read-only cache only costs a
    re-hash."""
    resolved = Path(path).resolve()
    stat = resolved.stat()
    key = (str(resolved), stat.st_size, stat.st_mtime_ns)
    if key in _MEMO:
        return _MEMO[key]
    memo = (
        cache_home()
        / "hashes"
        / (hashlib.sha256("|".join(map(str, key)).encode()).hexdigest() + ".json")
    )
    try:
        stored = json.loads(memo.read_text(encoding="utf-8"))
        value = str(stored["sha256"]) if stored.get("path") == key[0] else ""
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        value = ""
    if len(value) != 64:
        value = _hash_bytes(resolved)
        _store(memo, {"path": key[0], "size": key[1], "mtime_ns": key[2], "sha256": value})
    _MEMO[key] = value
    return value


def _hash_bytes(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _store(memo: Path, record: dict[str, object]) -> None:
    try:
        memo.parent.mkdir(parents=True, exist_ok=True)
        tmp = memo.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(record), encoding="utf-8")
        os.replace(tmp, memo)
    except OSError:
        pass  # a read-only or full cache only costs a re-hash next time


def reference_identity(ref: str | None) -> dict[str, Any]:
    """What identifies a model reference without loading or hashing it: the reference, and
    for a local file or folder its resolved path and its files' names, sizes and modification
    times (a replaced file is a new identity)."""
    identity: dict[str, Any] = {"ref": ref}
    if ref is None:
        return identity
    path = Path(ref).expanduser()
    try:
        files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
        stats = [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files if p.is_file()]
    except OSError:
        return identity
    if stats:
        identity["path"] = str(path.resolve())
        identity["files"] = stats
    return identity
