"""What a run cost, read from its directory: ``result.json["compute"]`` when the run recorded it
(seconds, tokens and passes per model role, peak memory), else the wall time of its steps."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

TOKEN_KEYS = ("prompt_tokens", "generated_tokens", "forward_passes", "backward_passes", "requests")


@dataclass(frozen=True)
class Cost:
    """A run's compute: ``source`` says where the figures come from (``compute``, ``step
    timings`` or ``none``); token and pass counts are summed over model roles."""

    source: str
    seconds: float | None = None
    prompt_tokens: int | None = None
    generated_tokens: int | None = None
    forward_passes: int | None = None
    backward_passes: int | None = None
    peak_rss_mb: float | None = None
    cuda_peak_mb: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Cost:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    def short(self) -> str:
        """``"312 s, 45.1k gen tok, 12 fwd / 3 bwd"`` (only what is known)."""
        if self.seconds is None:
            return "n/a"
        parts = [f"{self.seconds:.0f} s" if self.seconds >= 10 else f"{self.seconds:.1f} s"]
        if self.source == "step timings":
            parts[0] += " (steps)"
        if self.generated_tokens is not None:
            parts.append(f"{count_text(self.generated_tokens)} gen tok")
        if self.forward_passes is not None:
            parts.append(f"{self.forward_passes} fwd / {self.backward_passes or 0} bwd")
        return ", ".join(parts)


def count_text(value: int) -> str:
    """``45123`` -> ``"45.1k"``."""
    if value >= 1_000_000:
        return f"{value / 1e6:.1f}M"
    if value >= 1000:
        return f"{value / 1000:.1f}k"
    return str(value)


def read_cost(run_dir: Path, result: dict[str, Any]) -> Cost:
    """The cost of a finished run (``result`` is its ``result.json``)."""
    compute = result.get("compute")
    if isinstance(compute, dict) and isinstance(compute.get("seconds"), (int, float)):
        totals = dict.fromkeys(TOKEN_KEYS, 0)
        models = compute.get("models")
        for usage in (models or {}).values() if isinstance(models, dict) else ():
            if isinstance(usage, dict):
                for key in TOKEN_KEYS:
                    value = usage.get(key)
                    totals[key] += int(value) if isinstance(value, (int, float)) else 0
        known = isinstance(models, dict) and bool(models)
        return Cost(
            source="compute",
            seconds=float(compute["seconds"]),
            prompt_tokens=totals["prompt_tokens"] if known else None,
            generated_tokens=totals["generated_tokens"] if known else None,
            forward_passes=totals["forward_passes"] if known else None,
            backward_passes=totals["backward_passes"] if known else None,
            peak_rss_mb=_number(compute.get("peak_rss_mb")),
            cuda_peak_mb=_number(compute.get("cuda_peak_mb")),
        )
    seconds = _step_seconds(run_dir)
    finalize = _number(result.get("finalize_seconds"))
    if seconds is None and finalize is None:
        return Cost(source="none")
    return Cost(source="step timings", seconds=(seconds or 0.0) + (finalize or 0.0))


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _step_seconds(run_dir: Path) -> float | None:
    """The summed ``timings["step"]`` of ``steps.jsonl`` (None without readable steps)."""
    import gzip

    path = run_dir / "steps.jsonl"
    try:
        if path.is_file():
            lines = path.read_text(encoding="utf-8").splitlines()
        else:  # an export keeps it compressed
            with gzip.open(path.with_name("steps.jsonl.gz"), "rt", encoding="utf-8") as handle:
                lines = handle.read().splitlines()
    except (OSError, EOFError):
        return None
    total, found = 0.0, False
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        step = (
            _number((record.get("timings") or {}).get("step")) if isinstance(record, dict) else None
        )
        if step is not None:
            total += step
            found = True
    return total if found else None
