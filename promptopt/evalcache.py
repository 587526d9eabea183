"""Content-addressed on-disk cache of evaluation results, so a rerun is served from disk.

A key is a JSON-serializable dict (backend fingerprint, prompt text, example id, scoring mode,
max tokens, ...); its SHA-256 over canonical JSON names the file, so any change in any key part
is a different entry. Values are JSON files written atomically (temp file + rename).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from promptopt.rundir import atomic_write_text

CACHE_ENV = "PROMPTOPT_CACHE_DIR"


def default_cache_root() -> Path:
    """``$PROMPTOPT_CACHE_DIR/evals``, else ``~/.cache/promptopt/evals``."""
    base = os.environ.get(CACHE_ENV)
    root = Path(base) if base else Path.home() / ".cache" / "promptopt"
    return root / "evals"


def canonical_json(value: Any) -> str:
    """Deterministic JSON: sorted keys, no whitespace, non-JSON values as their ``str``."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


class EvalCache:
    """Get/put JSON values by dict keys under ``root``; counts hits and misses."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_root()
        self.hits = 0
        self.misses = 0

    @classmethod
    def default(cls) -> EvalCache:
        """The cache at :func:`default_cache_root`."""
        return cls(default_cache_root())

    @staticmethod
    def key_digest(key: dict[str, Any]) -> str:
        """The SHA-256 hex digest of the key's canonical JSON."""
        return hashlib.sha256(canonical_json(key).encode("utf-8")).hexdigest()

    def path_for(self, key: dict[str, Any]) -> Path:
        digest = self.key_digest(key)
        return self.root / digest[:2] / f"{digest}.json"

    def get(self, key: dict[str, Any]) -> dict[str, Any] | None:
        """The stored value, or None (a miss) if absent or unreadable."""
        path = self.path_for(key)
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.misses += 1
            return None
        if not isinstance(entry, dict) or entry.get("key") != json.loads(canonical_json(key)):
            self.misses += 1  # a digest collision or a damaged file: never serve it
            return None
        self.hits += 1
        value = entry.get("value")
        return value if isinstance(value, dict) else None

    def put(self, key: dict[str, Any], value: dict[str, Any]) -> None:
        """Store ``value`` atomically (readers never see a half-written file)."""
        atomic_write_text(self.path_for(key), canonical_json({"key": key, "value": value}))

    def stats(self) -> dict[str, int]:
        """``{"hits": .., "misses": ..}`` since this object was created."""
        return {"hits": self.hits, "misses": self.misses}
