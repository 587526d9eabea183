"""What a study's evaluation produces, before statistics: per-example correctness of every
prompt on every run's test examples, the baselines of each test set, and each run's cost."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from promptopt.studies.cost import Cost


@dataclass(frozen=True)
class Scored:
    """One prompt (or the majority class) on one test set: per-example correctness in the test
    set's order, and how many outputs had no parseable answer (a format failure)."""

    correctness: tuple[bool, ...]
    unparsed: int = 0
    prompt: str | None = None

    @property
    def n(self) -> int:
        return len(self.correctness)

    @property
    def correct(self) -> int:
        return sum(self.correctness)

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else 0.0

    def to_dict(self) -> dict[str, Any]:
        """Counts plus the correctness as a compact ``"0110..."`` string."""
        return {
            "prompt": self.prompt,
            "n": self.n,
            "correct": self.correct,
            "accuracy": self.accuracy,
            "unparsed": self.unparsed,
            "correctness": "".join("1" if c else "0" for c in self.correctness),
        }


@dataclass(frozen=True)
class HeldOutSet:
    """The test examples one or more runs are evaluated on, with the baselines that need no
    run: the empty prompt (the bare question) and the majority class of these examples."""

    id: str
    task: str
    example_ids: tuple[str, ...]
    max_new_tokens: int
    majority_answer: str
    empty: Scored
    majority: Scored
    transfer_empty: dict[str, Scored] = field(default_factory=dict)


@dataclass(frozen=True)
class RunEvaluation:
    """One finished run: its optimized and initial prompt on its test set (and on every
    transfer variant), its result summary and its cost."""

    index: int
    method: str
    task: str
    seed: int
    path: str
    test_set: str
    best: Scored
    initial: Scored
    cost: Cost
    result: dict[str, Any] = field(default_factory=dict)
    #: variant label -> (best, initial) on that variant.
    transfer: dict[str, tuple[Scored, Scored]] = field(default_factory=dict)


@dataclass
class StudyEvaluation:
    """Everything the report is computed from."""

    runs: list[RunEvaluation]
    test_sets: dict[str, HeldOutSet]
    eval_backend: str
    eval_model: str | None
    scoring: str
    transfer: list[str] = field(default_factory=list)
