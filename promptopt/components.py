"""Abstract component interfaces that plugins implement and the run loop drives.

Every component class carries a registry ``name`` and a pydantic ``Options`` model
(``extra="forbid"``). The run loop builds each component as ``cls(options)``; backends also
receive the model to load. Components that keep state across steps implement ``state_dict``
and ``load_state_dict`` with JSON-serializable values so that runs can resume.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from promptopt.accounting import Usage
from promptopt.types import (
    AnswerType,
    Candidate,
    Chain,
    Example,
    Prompt,
    PromptLoss,
    Selection,
    Split,
)

if TYPE_CHECKING:
    from promptopt.progress import Progress


class ComponentOptions(BaseModel):
    """Base for every component's options: unknown keys are errors, values are validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Component(ABC):
    """Base of all components: a registry name, a kind and validated options."""

    #: The name users select the component by (``--task folio``, ``selector = "greater"``).
    name: ClassVar[str] = ""
    #: The component kind, set by each interface below.
    kind: ClassVar[str] = ""
    #: One line shown by ``promptopt plugins`` and friends.
    description: ClassVar[str] = ""
    Options: ClassVar[type[ComponentOptions]] = ComponentOptions

    def __init__(self, options: ComponentOptions | None = None) -> None:
        self.options = options if options is not None else self.Options()

    def state_dict(self) -> dict[str, Any]:
        """State to checkpoint between steps (JSON-serializable); stateless components keep {}."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""


# --------------------------------------------------------------------------- tasks and models


class Task(Component):
    """A benchmark: examples per split, the answer extractor, a parser and a scorer."""

    kind: ClassVar[str] = "task"
    answer_type: ClassVar[AnswerType] = AnswerType.FREE_TEXT

    @abstractmethod
    def examples(self, split: Split) -> list[Example]:
        """The examples of ``split``, in a deterministic order; raises DataError if empty."""

    @abstractmethod
    def extractor(self, example: Example) -> str:
        """Text appended after the reasoning so that the answer comes next
        (e.g. ``"Therefore, the final answer (use exact format: '$A' or '$B') is $"``)."""

    @abstractmethod
    def parse(self, text: str) -> str | None:
        """The final answer in ``text``, normalized like ``Example.answer``; None if absent.

        The last answer in the text wins."""

    def continuation(self, answer: str) -> str:
        """The exact text that follows :meth:`extractor` for the normalized ``answer``
        (e.g. ``"C"`` for "(C)", ``" Yes"`` after an extractor ending in "$ ")."""
        return answer

    def target(self, example: Example) -> str:
        """The loss target after the extractor: the gold answer's continuation."""
        return self.continuation(example.answer)

    def is_correct(self, predicted: str | None, example: Example) -> bool:
        """Exact match after normalization."""
        return predicted is not None and predicted == example.answer

    def user_turn(self, example: Example, prompt: Prompt) -> str:
        """The user message: the question, then the prompt being optimized as its next sentence.

        GReaTer's layout is ``{question}. Use {prompt}``; a question that already ends a
        sentence ("?", ".", "!", ":") gets a space instead of a second full stop."""
        question = example.question.rstrip()
        joiner = " " if question.endswith(("?", ".", "!", ":")) else ". "
        return f"{question}{joiner}{prompt.text}"

    def split_sizes(self) -> dict[str, int]:
        """Sizes of the configured splits (loads the data)."""
        return {split: len(self.examples(split)) for split in ("train", "dev", "test")}


class Backend(Component):
    """A model runtime. Text in, text or log-probabilities out; white-box backends expose more."""

    kind: ClassVar[str] = "backend"
    #: True when the backend gives logits and gradients (needed by gradient methods).
    white_box: ClassVar[bool] = False

    def __init__(self, model: str | None, options: ComponentOptions | None = None) -> None:
        super().__init__(options)
        self.model_ref = model
        #: What this model has done so far (tokens, passes, requests); the loop reports deltas.
        self.usage = Usage()

    @property
    @abstractmethod
    def model_id(self) -> str:
        """A stable identifier of the loaded model (path or hub id), recorded in results."""

    @abstractmethod
    def chat(self, user: str) -> str:
        """The full model input for a single user turn, chat template and generation prompt
        applied (or a plain completion template for base models)."""

    @abstractmethod
    def generate(
        self,
        texts: Sequence[str],
        *,
        max_new_tokens: int,
        stop: Sequence[str] = (),
        progress: Progress | None = None,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int | None = None,
        n: int = 1,
    ) -> list[str]:
        """Continuations of ``texts``: greedy at ``temperature`` 0 (the default), else sampled
        with nucleus ``top_p``. With ``n`` samples per text the result is text-major
        (``result[i * n + j]`` is sample ``j`` of text ``i``), each drawn with the seed
        :func:`promptopt.sampling.sample_seed` ``(seed, i, j)`` (``seed`` None: the backend's
        own seed option, else 0), so outputs do not depend on batching. Generation stops at
        EOS or before the first stop string."""

    @abstractmethod
    def continuation_logprobs(self, prefix: str, continuations: Sequence[str]) -> list[float]:
        """Summed log-probability of each continuation after ``prefix``."""

    def fingerprint(self) -> dict[str, Any]:
        """Everything that identifies this backend's outputs (model content hash, quantization,
        sampling settings, template); evaluation caches key on it."""
        return {"backend": self.name, "model": self.model_id}

    def close(self) -> None:
        """Release model memory."""


# --------------------------------------------------------------------------- the four components


@dataclass
class StepContext:
    """What one optimization step can see. ``rng`` is seeded from (seed, step) so a resumed run
    draws the same numbers; components add their phase timings (seconds) to ``timings``."""

    step: int
    task: Task
    backend: Backend
    reasoner: Reasoner
    loss_extractor: LossExtractor
    train: Sequence[Example]
    rng: random.Random
    progress: Progress
    run_dir: Path | None = None
    timings: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


class Reasoner(Component):
    """Generates reasoning chains for examples under a prompt."""

    kind: ClassVar[str] = "reasoner"

    @abstractmethod
    def reason(
        self, ctx: StepContext, prompts: Sequence[Prompt], examples: Sequence[Example]
    ) -> list[list[Chain]]:
        """Chains for every (prompt, example) pair: ``result[i][j]`` is prompt i on example j.
        Taking several prompts at once lets a backend batch candidate evaluation."""


class Proposer(Component):
    """Suggests candidate prompts for the next step."""

    kind: ClassVar[str] = "proposer"

    @abstractmethod
    def propose(self, ctx: StepContext, prompt: Prompt, chains: Sequence[Chain]) -> list[Candidate]:
        """Candidates derived from ``prompt``; ``chains`` are its reasoning on ``ctx.train``."""


class LossExtractor(Component):
    """Extracts answers from reasoning and turns them into losses."""

    kind: ClassVar[str] = "loss_extractor"

    @abstractmethod
    def score_candidates(
        self,
        ctx: StepContext,
        prompt: Prompt,
        candidates: Sequence[Candidate],
        chains: Sequence[Chain],
    ) -> list[float]:
        """A cheap score per candidate, lower is better (GReaTer: the one-hot gradient)."""

    @abstractmethod
    def evaluate(self, ctx: StepContext, prompts: Sequence[Prompt]) -> list[PromptLoss]:
        """Exact losses of ``prompts`` on ``ctx.train`` (regenerating reasoning as needed)."""


class Selector(Component):
    """Chooses the next prompt from scored candidates."""

    kind: ClassVar[str] = "selector"

    @abstractmethod
    def select(
        self,
        ctx: StepContext,
        prompt: Prompt,
        candidates: Sequence[Candidate],
        scores: Sequence[float],
    ) -> Selection:
        """The next prompt; ``Selection.stop`` ends the run early."""

    def best_prompts(self) -> list[PromptLoss]:
        """The best prompts seen so far, best first (the final choice is made among them)."""
        return []


# --------------------------------------------------------------------------- methods


class MethodOptions(ComponentOptions):
    """Options every method understands."""

    steps: int = Field(default=100, ge=1)
    initial_prompt: str | None = None


class Method(Component):
    """A named preset: which components to use, their default options, and how a run starts
    and ends. ``promptopt run greater --task folio -o steps=2`` picks the ``greater`` preset."""

    kind: ClassVar[str] = "method"
    Options: ClassVar[type[ComponentOptions]] = MethodOptions
    proposer: ClassVar[str]
    reasoner: ClassVar[str]
    loss_extractor: ClassVar[str]
    selector: ClassVar[str]
    backend: ClassVar[str] = "hf"
    #: True when the method's components need logits and gradients (a white-box backend).
    needs_white_box: ClassVar[bool] = False
    #: Option values this method sets for its components unless the user overrides them.
    defaults: ClassVar[dict[str, Any]] = {}

    @property
    def steps(self) -> int:
        return int(getattr(self.options, "steps", 100))

    @abstractmethod
    def initial_prompt(self, task: Task, backend: Backend) -> Prompt:
        """The prompt the run starts from."""

    def finalize(self, ctx: StepContext, initial: Prompt, selector: Selector) -> dict[str, Any]:
        """Choose the final prompt (e.g. on the dev split) and return result fields, at least
        ``{"best_prompt": str}``."""
        best = selector.best_prompts()
        chosen = best[0].prompt if best else initial
        return {"best_prompt": chosen.text}


COMPONENT_KINDS: tuple[str, ...] = (
    "task",
    "backend",
    "method",
    "proposer",
    "reasoner",
    "loss_extractor",
    "selector",
)

KIND_BASES: dict[str, type[Component]] = {
    "task": Task,
    "backend": Backend,
    "method": Method,
    "proposer": Proposer,
    "reasoner": Reasoner,
    "loss_extractor": LossExtractor,
    "selector": Selector,
}
