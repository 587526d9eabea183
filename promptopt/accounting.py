"""Compute accounting: what a model did (tokens read and generated, passes, requests) and the
process's peak memory, so every run can report its cost next to its gain."""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, TypeVar

CountersT = TypeVar("CountersT", bound="Counters")


@dataclass
class Counters:
    """Base of dataclasses of integer counters that only grow: a snapshot taken now, and what
    was added since one (the pattern every "cost of this step" report uses)."""

    def snapshot(self: CountersT) -> CountersT:
        """A frozen copy, to subtract from later."""
        return replace(self)

    def since(self: CountersT, before: CountersT) -> CountersT:
        """What was added after ``before`` was taken."""
        return replace(
            self, **{f.name: getattr(self, f.name) - getattr(before, f.name) for f in fields(self)}
        )

    def add(self: CountersT, other: CountersT) -> None:
        """Add another set of the same counters to these."""
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


@dataclass
class Usage(Counters):
    """Running counters of one model; backends add to them, the loop reads per-step deltas.

    ``prompt_tokens``: input tokens the model read (prefill, scoring); ``generated_tokens``:
    tokens it produced; ``forward_passes``/``backward_passes``: batched model calls (one batch
    of rows = one pass); ``requests``: calls into the backend's public API."""

    prompt_tokens: int = 0
    generated_tokens: int = 0
    forward_passes: int = 0
    backward_passes: int = 0
    requests: int = 0

    def record(
        self,
        *,
        prompt_tokens: int = 0,
        generated_tokens: int = 0,
        forward_passes: int = 0,
        backward_passes: int = 0,
        requests: int = 0,
    ) -> None:
        """Add to the counters."""
        self.prompt_tokens += int(prompt_tokens)
        self.generated_tokens += int(generated_tokens)
        self.forward_passes += int(forward_passes)
        self.backward_passes += int(backward_passes)
        self.requests += int(requests)

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Usage:
        names = {f.name for f in fields(cls)}
        return cls(**{k: int(v) for k, v in data.items() if k in names})


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (0.0 where the OS does not say)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return 0.0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def cuda_peak_mb() -> float | None:
    """Peak CUDA memory allocated by torch in this process, in MiB; None without CUDA (or
    when torch was never imported: the check must not import it)."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available():
        return None
    return float(torch.cuda.max_memory_allocated()) / (1024 * 1024)
