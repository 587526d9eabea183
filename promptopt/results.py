"""Typed results of the Python API's evaluations and studies (a run's is
:class:`promptopt.runs.RunResult`), each with ``to_dict()`` giving plain JSON data."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from promptopt.evaluation import EvalReport
    from promptopt.types import Example


@dataclass(frozen=True)
class ExampleRecord:
    """One evaluated example: what the model saw and said, the answer read from it, the gold
    answer and the example's score in [0, 1]."""

    id: str
    question: str
    #: The model's whole output: its reasoning, then the answer after the extractor.
    output: str
    parsed: str | None
    gold: str
    score: float
    reasoning: str = field(repr=False, default="")
    answer_text: str = field(repr=False, default="")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class EvalResult:
    """A prompt's evaluation on a task split: the mean ``score`` (accuracy when every score is 0
    or 1), its 95% bootstrap interval ``ci``, ``n`` examples and one record per example."""

    prompt: str
    task: str
    split: str
    backend: str
    model: str
    scoring: str
    metric: str
    score: float
    ci: tuple[float, float]
    n: int
    records: list[ExampleRecord] = field(repr=False, default_factory=list)
    #: The evaluation as ``summary.json`` has it (what ``promptopt eval`` prints).
    summary: dict[str, Any] = field(repr=False, default_factory=dict)
    report: EvalReport | None = field(repr=False, default=None, compare=False)

    @property
    def accuracy(self) -> float | None:
        """The score when it is an accuracy (every example scored 0 or 1), else None."""
        return self.score if all(r.score in (0.0, 1.0) for r in self.records) else None

    def to_dict(self) -> dict[str, Any]:
        """The summary and every per-example record."""
        return {**self.summary, "records": [r.to_dict() for r in self.records]}

    @classmethod
    def from_report(cls, report: EvalReport, examples: Sequence[Example]) -> EvalResult:
        """The result of ``report``, whose outcomes are those of ``examples`` in order."""
        questions = {ex.id: ex.question for ex in examples}
        records = [
            ExampleRecord(
                id=o.example_id,
                question=questions.get(o.example_id, ""),
                output=_output(o.reasoning, o.answer_text),
                parsed=o.predicted,
                gold=o.gold,
                score=o.score,
                reasoning=o.reasoning,
                answer_text=o.answer_text,
            )
            for o in report.outcomes
        ]
        return cls(
            prompt=report.prompt,
            task=report.task,
            split=report.split,
            backend=report.backend,
            model=report.model,
            scoring=report.scoring,
            metric=report.metric,
            score=report.score,
            ci=(report.ci_low, report.ci_high),
            n=report.n,
            records=records,
            summary=report.summary(),
            report=report,
        )


def _output(reasoning: str, answer_text: str) -> str:
    answer = answer_text.strip()
    return f"{reasoning.rstrip()} {answer}" if answer else reasoning


@dataclass(frozen=True)
class StudyResult:
    """A study's report: ``report`` is ``report.json`` (per task: every method's test score
    against its initial prompt, the empty prompt and the majority class, with paired tests),
    ``root`` the study directory and ``files`` what the study wrote there."""

    root: Path
    report: dict[str, Any] = field(repr=False)
    files: list[Path] = field(default_factory=list)

    @property
    def report_path(self) -> Path:
        """The Markdown report (``report.md``)."""
        return self.root / "report.md"

    def to_dict(self) -> dict[str, Any]:
        """The report data (a copy)."""
        return dict(self.report)
