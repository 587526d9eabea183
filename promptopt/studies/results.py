"""What a study's evaluation produces, before statistics: per-example scores of every prompt on
every run's test examples, the baselines of each test set, and each run's cost."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from promptopt.metrics import is_binary
from promptopt.studies.cost import Cost


@dataclass(frozen=True)
class Scored:
    """One prompt (or the majority class) on one test set: per-example scores in [0, 1] under
    the task's ``metric`` in the test set's order (0/1 for right-or-wrong metrics), and how
    many outputs had no parseable answer (a format failure)."""

    scores: tuple[float, ...]
    unparsed: int = 0
    prompt: str | None = None
    metric: str = "exact"

    def __post_init__(self) -> None:
        object.__setattr__(self, "scores", tuple(float(s) for s in self.scores))

    @property
    def n(self) -> int:
        return len(self.scores)

    @property
    def binary(self) -> bool:
        """True when every score is 0 or 1: the mean is then an accuracy."""
        return is_binary(self.scores)

    @property
    def correctness(self) -> tuple[bool, ...]:
        """Per example, whether it scored 1."""
        return tuple(s == 1.0 for s in self.scores)

    @property
    def correct(self) -> int:
        return sum(self.correctness)

    @property
    def mean(self) -> float:
        """The mean score (the accuracy, for right-or-wrong metrics)."""
        return sum(self.scores) / self.n if self.n else 0.0

    @property
    def accuracy(self) -> float:
        return self.mean

    def to_dict(self) -> dict[str, Any]:
        """Counts, the accuracy and the correctness as a compact ``"0110..."`` string for
        right-or-wrong scores; the mean ``score`` and the per-example ``scores`` otherwise."""
        head = {"prompt": self.prompt, "n": self.n, "metric": self.metric}
        if not self.binary:
            return {
                **head,
                "score": self.mean,
                "unparsed": self.unparsed,
                "scores": list(self.scores),
            }
        return {
            **head,
            "correct": self.correct,
            "accuracy": self.accuracy,
            "unparsed": self.unparsed,
            "correctness": "".join("1" if c else "0" for c in self.correctness),
        }


@dataclass(frozen=True)
class HeldOutSet:
    """A task's shared test set (every method and seed is evaluated on these rows) with its
    baselines: the empty prompt (the bare question), the majority class of the *training*
    labels, the user's ``--baseline-prompt`` prompts and each method's initial prompt."""

    id: str
    task: str
    example_ids: tuple[str, ...]
    max_new_tokens: int
    majority_answer: str
    empty: Scored
    majority: Scored
    transfer_empty: dict[str, Scored] = field(default_factory=dict)
    #: ``prompt 1``... -> the user's baseline prompts on these rows.
    prompts: dict[str, Scored] = field(default_factory=dict)
    #: method -> its initial prompt (of its first run) on these rows.
    initials: dict[str, Scored] = field(default_factory=dict)
    #: where the majority answer comes from, and from how many labels
    majority_source: str = "train"
    majority_from: int = 0
    #: the first row of the test set (None: the task's splits are fixed)
    test_from: int | None = None


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
    #: evaluations whose verdicts were re-derived under a changed task parser
    rescored: list[str] = field(default_factory=list)
