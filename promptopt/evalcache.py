"""Content-addressed on-disk cache of model outputs, so a rerun of an evaluation is served from
disk while every verdict is derived again with the task's current code.

What is cached is the model's work, keyed on the exact model input (:class:`CachedModel`):

* a generation: backend fingerprint + the exact text given to the model + max new tokens + stop
  strings + decoding settings -> the generated text;
* option log-probabilities: backend fingerprint + the exact prefix + the exact continuations ->
  one log-probability per continuation.

A key is a JSON-serializable dict; its SHA-256 over canonical JSON names the file, so any change
in any key part is a different entry. Entries are JSON files written atomically (temp file +
rename) that carry a format version: an entry of another version, another shape or a damaged
one is a miss, never an error. A cache folder that cannot be written is reported once on stderr
and the evaluation continues without storing.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from promptopt.rundir import atomic_write_text

if TYPE_CHECKING:
    from promptopt.components import Backend
    from promptopt.progress import Progress

CACHE_ENV = "PROMPTOPT_CACHE_DIR"
#: Version of the entry layout; entries written with another version are misses.
FORMAT = 2


def default_cache_root() -> Path:
    """``$PROMPTOPT_CACHE_DIR/evals``, else ``~/.cache/promptopt/evals``."""
    from promptopt.filehash import cache_home

    return cache_home() / "evals"


def canonical_json(value: Any) -> str:
    """Deterministic JSON: sorted keys, no whitespace, non-JSON values as their ``str``."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


class OutcomeCache(Protocol):
    """Where model outputs are stored by key (see :class:`EvalCache`)."""

    def get(self, key: dict[str, Any]) -> dict[str, Any] | None: ...

    def put(self, key: dict[str, Any], value: dict[str, Any]) -> None: ...


class EvalCache:
    """Get/put JSON values by dict keys under ``root``; counts hits and misses."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_root()
        self.hits = 0
        self.misses = 0
        #: False after a failed write: the folder is read-only or full; nothing more is stored.
        self.writable = True

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
        """The stored value, or None (a miss) if absent, unreadable, of another format version
        or stored under another key (a digest collision)."""
        path = self.path_for(key)
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.misses += 1
            return None
        if (
            not isinstance(entry, dict)
            or entry.get("format") != FORMAT
            or entry.get("key") != json.loads(canonical_json(key))
            or not isinstance(entry.get("value"), dict)
        ):
            self.misses += 1
            return None
        self.hits += 1
        return dict(entry["value"])

    def put(self, key: dict[str, Any], value: dict[str, Any]) -> None:
        """Store ``value`` atomically (readers never see a half-written file). A folder that
        cannot be written (read-only, full, not a folder) is reported once on stderr; later
        puts are skipped and the caller carries on without caching."""
        if not self.writable:
            return
        entry = {"format": FORMAT, "key": key, "value": value}
        try:
            atomic_write_text(self.path_for(key), canonical_json(entry))
        except OSError as exc:
            self.writable = False
            reason = exc.strerror or type(exc).__name__
            print(
                f"promptopt: warning: cannot write the evaluation cache in {self.root} "
                f"({reason}); continuing without caching (set {CACHE_ENV} to a writable folder)",
                file=sys.stderr,
            )

    def stats(self) -> dict[str, int]:
        """``{"hits": .., "misses": ..}`` since this object was created."""
        return {"hits": self.hits, "misses": self.misses}


class CachedModel:
    """A backend's ``generate`` (greedy) and ``continuation_logprobs`` behind a cache keyed on
    the exact model input; each call also says which results came from the cache."""

    def __init__(self, backend: Backend, cache: OutcomeCache | None) -> None:
        self.backend = backend
        self.cache = cache
        self._fingerprint = backend.fingerprint() if cache is not None else None

    def generation_key(self, text: str, max_new_tokens: int, stop: Sequence[str]) -> dict[str, Any]:
        """The key of one greedy generation: everything that decides the generated text."""
        return {
            "kind": "generation",
            "backend": self._fingerprint,
            "input": text,
            "max_new_tokens": max_new_tokens,
            "stop": list(stop),
            "decoding": {"temperature": 0.0, "top_p": 1.0, "seed": None, "n": 1},
        }

    def logprobs_key(self, prefix: str, continuations: Sequence[str]) -> dict[str, Any]:
        """The key of one option scoring: the exact prefix and continuations."""
        return {
            "kind": "logprobs",
            "backend": self._fingerprint,
            "prefix": prefix,
            "continuations": list(continuations),
        }

    def generate(
        self,
        texts: Sequence[str],
        *,
        max_new_tokens: int,
        stop: Sequence[str] = (),
        progress: Progress | None = None,
    ) -> tuple[list[str], list[bool]]:
        """Greedy continuations of ``texts`` and, per text, whether it was served from the
        cache; the missing ones are generated in one call and stored as soon as it returns."""
        if not texts:
            return [], []
        if self.cache is None:
            out = self.backend.generate(
                texts, max_new_tokens=max_new_tokens, stop=stop, progress=progress
            )
            return list(out), [False] * len(texts)
        keys = [self.generation_key(t, max_new_tokens, stop) for t in texts]
        results = [_text(self.cache.get(key)) for key in keys]
        hits = [r is not None for r in results]
        todo = [i for i, hit in enumerate(hits) if not hit]
        if todo:
            outputs = self.backend.generate(
                [texts[i] for i in todo],
                max_new_tokens=max_new_tokens,
                stop=stop,
                progress=progress,
            )
            for i, text in zip(todo, outputs, strict=True):
                results[i] = text
                self.cache.put(keys[i], {"text": text})
        return [r if r is not None else "" for r in results], hits

    def logprobs(self, prefix: str, continuations: Sequence[str]) -> tuple[list[float], bool]:
        """Summed log-probability of each continuation after ``prefix``, and whether it came
        from the cache."""
        if self.cache is None:
            return list(self.backend.continuation_logprobs(prefix, continuations)), False
        key = self.logprobs_key(prefix, continuations)
        stored = _logprobs(self.cache.get(key), len(continuations))
        if stored is not None:
            return stored, True
        values = [float(v) for v in self.backend.continuation_logprobs(prefix, continuations)]
        self.cache.put(key, {"logprobs": values})
        return values, False


def _text(value: dict[str, Any] | None) -> str | None:
    """The stored generation, or None for a miss or a value of another shape."""
    text = value.get("text") if isinstance(value, dict) else None
    return text if isinstance(text, str) else None


def _logprobs(value: dict[str, Any] | None, n: int) -> list[float] | None:
    """The stored log-probabilities, or None for a miss or a value of another shape."""
    values = value.get("logprobs") if isinstance(value, dict) else None
    if not isinstance(values, list) or len(values) != n:
        return None
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return None
    return [float(v) for v in values]
