"""The scored history of a run: every prompt evaluated so far, with its scores, the step that
produced it and the model role that scored it. Owned by the loop and checkpointed with it, so
selectors ask it for the best prompts ("keep the top 10") and methods for the trajectory (GPO)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from promptopt.types import Prompt, PromptLoss

#: How prompts are told apart: prefix, token ids (token methods), text and separator; not the
#: edit position.
PromptKey = tuple[str, tuple[int, ...] | None, str, str | None]


def prompt_key(prompt: Prompt) -> PromptKey:
    """The identity of a prompt, whatever position it is being edited at."""
    return (prompt.prefix, prompt.tokens, prompt.text, prompt.separator)


@dataclass(frozen=True)
class Scored:
    """One exact evaluation: ``loss`` (lower is better) and ``error_rate`` (1 - the mean
    score) on ``split``, made at ``step`` (-1: before the first step) by the model in
    ``role``; ``outcomes``: per-example scores by example id, when the evaluator kept them."""

    prompt: Prompt
    loss: float
    error_rate: float
    step: int
    split: str = "train"
    role: str = "task"
    details: dict[str, float] = field(default_factory=dict)
    outcomes: dict[str, float] = field(default_factory=dict)

    @property
    def accuracy(self) -> float:
        """The mean score, 1 - ``error_rate`` (an accuracy for right-or-wrong metrics)."""
        return 1.0 - self.error_rate

    def as_loss(self) -> PromptLoss:
        """The same evaluation as a :class:`PromptLoss`."""
        return PromptLoss(
            self.prompt,
            self.loss,
            self.error_rate,
            dict(self.details),
            self.split,
            dict(self.outcomes),
        )

    def to_dict(self) -> dict[str, Any]:
        return {**self.as_loss().to_dict(), "step": self.step, "role": self.role}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scored:
        loss = PromptLoss.from_dict(data)
        return cls(
            loss.prompt,
            loss.loss,
            loss.error_rate,
            int(data["step"]),
            loss.split,
            str(data.get("role", "task")),
            loss.details,
            loss.outcomes,
        )


@dataclass
class History:
    """Every evaluation of the run in order, and the prompts the steps picked."""

    entries: list[Scored] = field(default_factory=list)
    picks: list[tuple[int, Prompt]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.entries)

    # ----------------------------------------------------------------- adding

    def record(
        self, losses: Iterable[PromptLoss], *, step: int, role: str = "task"
    ) -> list[Scored]:
        """Add the evaluations a step made; returns the new entries."""
        added = [
            Scored(
                x.prompt,
                x.loss,
                x.error_rate,
                step,
                x.split,
                role,
                dict(x.details),
                dict(x.outcomes),
            )
            for x in losses
        ]
        self.entries.extend(added)
        return added

    def mark_picked(self, prompt: Prompt, step: int) -> None:
        """Remember that ``step`` chose ``prompt``."""
        self.picks.append((step, prompt))

    # ----------------------------------------------------------------- asking

    def best(self, k: int = 1, *, split: str | None = None) -> list[Scored]:
        """The ``k`` lowest-loss distinct prompts (each at its lowest loss), best first; ties go
        to the earlier evaluation. ``split`` restricts to evaluations on that split."""
        lowest: dict[PromptKey, Scored] = {}
        order: dict[PromptKey, int] = {}
        for i, entry in enumerate(self.entries):
            if split is not None and entry.split != split:
                continue
            key = prompt_key(entry.prompt)
            if key not in lowest:
                order[key] = i
                lowest[key] = entry
            elif entry.loss < lowest[key].loss:
                lowest[key] = entry
        ranked = sorted(lowest, key=lambda key: (lowest[key].loss, order[key]))
        return [lowest[key] for key in ranked[:k]]

    def lookup(self, prompt: Prompt, *, split: str | None = None) -> Scored | None:
        """The latest evaluation of ``prompt`` (on ``split``), if any: lets a method reuse a
        score instead of evaluating a repeat again."""
        key = prompt_key(prompt)
        for entry in reversed(self.entries):
            if prompt_key(entry.prompt) == key and (split is None or entry.split == split):
                return entry
        return None

    def was_picked(self, prompt: Prompt) -> bool:
        """True when an earlier step chose ``prompt``."""
        key = prompt_key(prompt)
        return any(prompt_key(picked) == key for _, picked in self.picks)

    def never_picked(self, prompts: Sequence[Prompt]) -> list[Prompt]:
        """The prompts no earlier step chose, in their order."""
        return [p for p in prompts if not self.was_picked(p)]

    def picked_prompts(self) -> list[Prompt]:
        """The prompts the steps chose, in step order."""
        return [prompt for _, prompt in self.picks]

    # ----------------------------------------------------------------- checkpointing

    def to_dict(self) -> dict[str, Any]:
        return {
            "entries": [entry.to_dict() for entry in self.entries],
            "picks": [{"step": step, "prompt": p.to_dict()} for step, p in self.picks],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> History:
        return cls(
            entries=[Scored.from_dict(entry) for entry in data.get("entries", [])],
            picks=[(int(x["step"]), Prompt.from_dict(x["prompt"])) for x in data.get("picks", [])],
        )
