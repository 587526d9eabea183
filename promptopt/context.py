"""What one optimization step can see and how components report back to the loop: notes that
land in ``steps.jsonl`` and in the step's :class:`~promptopt.records.StepReport` (which later
steps and the method's final choice read back), phase timings, and reasoning chains computed at
most once per step."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from promptopt.errors import PromptoptError
from promptopt.history import History, prompt_key
from promptopt.records import StepReport
from promptopt.types import Chain, Example, Prompt, Split

if TYPE_CHECKING:
    from promptopt.components import Backend, LossExtractor, Reasoner, Task
    from promptopt.progress import Progress


def step_rng(seed: int, step: int) -> random.Random:
    """The random generator of one step: the same for a fresh and a resumed run."""
    return random.Random(f"promptopt:{seed}:{step}")


@dataclass
class StepContext:
    """One step's view of the run.

    ``backend`` is the task model; ``optimizer`` the model that writes prompts (methods such as
    GPO; None when the method uses none); ``reasoner`` the run's reasoner (None when the method
    names none: :meth:`chains` and :meth:`reason` then raise). ``population`` holds the step's
    current prompts, lead first; ``history`` every exact evaluation so far; ``reports`` what the
    components reported in every finished step (:attr:`previous`, :meth:`last_note`). ``rng``
    is seeded from (seed, step), so a resumed run draws the same numbers. Components report
    through :meth:`note`, :meth:`count` and :meth:`timed`; all end up in the step's record, and
    the notes in its report."""

    step: int
    task: Task
    backend: Backend
    reasoner: Reasoner | None
    loss_extractor: LossExtractor
    train: Sequence[Example]
    rng: random.Random
    progress: Progress
    history: History = field(default_factory=History)
    population: tuple[Prompt, ...] = ()
    optimizer: Backend | None = None
    seed: int = 0
    #: The run's step budget (the method's ``steps``).
    steps: int = 0
    run_dir: Path | None = None
    #: The reports of the finished steps, in order (step -1: the method's ``start``).
    reports: tuple[StepReport, ...] = ()
    notes: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    _chains: dict[Any, list[Chain]] = field(default_factory=dict, repr=False)
    _phases: list[list[Any]] = field(default_factory=list, repr=False)

    # ----------------------------------------------------------------- reporting

    def note(self, key: str, value: Any) -> None:
        """Record a JSON-serializable fact about this step (e.g. the shortlist); it is written
        to the step's line in ``steps.jsonl`` under ``notes`` and kept in the step's report,
        which later steps and the method's final choice read (:meth:`last_note`)."""
        self.notes[key] = value

    def count(self, key: str, amount: float = 1) -> None:
        """Add ``amount`` to the numeric note ``key`` (e.g. tokens generated)."""
        self.notes[key] = self.notes.get(key, 0) + amount

    @contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        """Add the seconds spent inside the block to ``timings[phase]``. Phases nest
        exclusively: time spent in an inner phase is not also charged to the outer one, so the
        phases of a step add up to its wall time."""
        start = time.perf_counter()
        frame: list[Any] = [phase, 0.0]  # name, seconds charged to inner phases
        self._phases.append(frame)
        try:
            yield
        finally:
            self._phases.pop()
            elapsed = time.perf_counter() - start
            own = elapsed - frame[1]
            self.timings[phase] = self.timings.get(phase, 0.0) + own
            if self._phases:
                self._phases[-1][1] += elapsed

    # ----------------------------------------------------------------- earlier steps

    @property
    def previous(self) -> StepReport | None:
        """The report of the latest finished step (step -1: the method's ``start``); None
        before any."""
        return self.reports[-1] if self.reports else None

    def last_note(self, key: str, default: Any = None) -> Any:
        """The latest value an earlier step noted under ``key`` (``default`` when none did)."""
        for report in reversed(self.reports):
            if key in report.notes:
                return report.notes[key]
        return default

    # ----------------------------------------------------------------- examples

    def examples(self, split: Split) -> list[Example]:
        """The examples of ``split``: the step's training examples for ``"train"``, else the
        task's."""
        return list(self.train) if split == "train" else self.task.examples(split)

    # ----------------------------------------------------------------- lazy reasoning

    def chains(self, prompt: Prompt, examples: Sequence[Example] | None = None) -> list[Chain]:
        """The reasoning chains of ``prompt`` on ``examples`` (default: the training examples),
        generated by the run's reasoner at most once per step; methods that need no reasoning
        never pay for it."""
        examples = list(examples if examples is not None else self.train)
        key = (prompt_key(prompt), tuple(e.id for e in examples))
        if key not in self._chains:
            with self.timed("reasoning"):
                self._chains[key] = self.reason([prompt], examples)[0]
        return self._chains[key]

    def reason(
        self, prompts: Sequence[Prompt], examples: Sequence[Example] | None = None
    ) -> list[list[Chain]]:
        """Fresh chains of every prompt on ``examples`` (default: the training examples) from
        the run's reasoner, ``result[i][j]`` for prompt i on example j (not cached: the exact
        evaluation of several prompts at once). A run without a reasoner raises a one-line
        error."""
        if self.reasoner is None:
            raise PromptoptError(
                "a component asked for reasoning chains, but this run has no reasoner (its "
                "method names none)",
                hint="choose one with --reasoner NAME, e.g. --reasoner chat",
            )
        examples = list(examples if examples is not None else self.train)
        return self.reasoner.reason(self, prompts, examples)

    @property
    def prompt(self) -> Prompt:
        """The lead prompt of the population."""
        if not self.population:
            raise ValueError("this step context has no population")
        return self.population[0]
