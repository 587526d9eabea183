"""What the run loop tells observers: the run being executed and one record per step."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class RunInfo:
    """A run as observers see it: its directory, resolved configuration and component names."""

    run_dir: Path
    config: dict[str, Any]
    components: dict[str, str]
    resumed: bool = False


@dataclass(frozen=True)
class StepRecord:
    """One line of ``steps.jsonl``: what a step proposed, how it scored and what it chose."""

    step: int
    position: int
    prompt_before: str
    candidates: list[str]
    scores: list[float]
    evaluated: list[dict[str, Any]]
    chosen_prompt: str
    loss: float | None
    stop: bool
    reason: str
    timings: dict[str, float] = field(default_factory=dict)
    #: Facts components recorded with ``ctx.note`` (shortlists, moves, rejected candidates...).
    notes: dict[str, Any] = field(default_factory=dict)
    #: Usage per model role, peak memory (see :mod:`promptopt.accounting`).
    compute: dict[str, Any] = field(default_factory=dict)
    #: The step's population when it held more than one prompt (lead first).
    population: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
