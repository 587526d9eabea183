"""What the run loop tells observers and components: the run being executed, one record per step,
and what the components of a step reported."""

from __future__ import annotations

import json
from collections.abc import Mapping
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


@dataclass(frozen=True)
class StepReport:
    """What the components of one step reported (``ctx.note`` / ``ctx.count``): the loop keeps
    every finished step's report in its state and checkpoint, so a later step
    (``ctx.previous``, ``ctx.reports``) and the method's final choice (``ctx.last_note``) read
    it back, the same in a resumed run as in an uninterrupted one. The notes are plain JSON
    (they are also the step's ``notes`` in ``steps.jsonl``); step -1 is the method's ``start``."""

    step: int
    notes: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, step: int, notes: Mapping[str, Any]) -> StepReport:
        """A report of ``notes`` as JSON reads them back (tuples become lists...), so the
        report a step leaves equals the one a checkpoint restores."""
        return cls(step, json.loads(json.dumps(dict(notes))))

    def get(self, key: str, default: Any = None) -> Any:
        """The note ``key``, or ``default`` when the step did not record it."""
        return self.notes.get(key, default)

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "notes": dict(self.notes)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StepReport:
        return cls(int(data["step"]), dict(data["notes"]))
