"""Abstract component interfaces that plugins implement and the run loop drives.

Every component class carries a registry ``name`` and a pydantic ``Options`` model
(``extra="forbid"``). The run loop builds each component as ``cls(options)``; backends also
receive the model to load. Components that keep state across steps implement ``state_dict``
and ``load_state_dict`` with JSON-serializable values so that runs can resume.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, cast

from pydantic import BaseModel, ConfigDict, Field

from promptopt.acceptance import AcceptRule
from promptopt.accounting import Usage
from promptopt.context import StepContext
from promptopt.errors import PromptoptError
from promptopt.history import History, Scored
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

__all__ = [
    "Backend",
    "Component",
    "ComponentOptions",
    "LossExtractor",
    "Method",
    "MethodOptions",
    "OptionsT",
    "Proposer",
    "Reasoner",
    "Selector",
    "StepContext",
    "Task",
]


class ComponentOptions(BaseModel):
    """Base for every component's options: unknown keys are errors, values are validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @classmethod
    def operational_fields(cls) -> frozenset[str]:
        """The options declared with :func:`operational`: they change how work runs (timeouts,
        retries, concurrency), never its results."""
        return frozenset(
            name
            for name, field in cls.model_fields.items()
            if isinstance(field.json_schema_extra, dict)
            and field.json_schema_extra.get(OPERATIONAL) is True
        )


#: The ``json_schema_extra`` marker of an operational option.
OPERATIONAL = "operational"


def operational(default: Any, **constraints: Any) -> Any:
    """A ``Field`` for an option that never changes results (a timeout, a retry count, a
    concurrency): result stores leave it out of their keys and a study may change it between
    invocations. ``constraints`` are pydantic's (``ge=1``...)."""
    return Field(default, json_schema_extra={OPERATIONAL: True}, **constraints)


#: A component's options class: ``class MyProposer(Proposer[MyOptions])`` types
#: ``self.options`` as ``MyOptions``.
OptionsT = TypeVar("OptionsT", bound=ComponentOptions)


class Component(ABC, Generic[OptionsT]):
    """Base of all components: a registry name, a kind and validated options. Subclass an
    interface with the options class it declares, ``class MyProposer(Proposer[MyOptions])``
    with ``Options = MyOptions``, and ``self.options`` has that type."""

    #: The name users select the component by (``--task folio``, ``selector = "greater"``).
    name: ClassVar[str] = ""
    #: The component kind, set by each interface below.
    kind: ClassVar[str] = ""
    #: One line shown by ``promptopt plugins`` and friends.
    description: ClassVar[str] = ""
    Options: ClassVar[type[ComponentOptions]] = ComponentOptions
    options: OptionsT

    def __init__(self, options: ComponentOptions | None = None) -> None:
        chosen = options if options is not None else self.Options()
        if not isinstance(chosen, self.Options):
            raise TypeError(
                f"{type(self).__name__} takes {self.Options.__name__}, not {type(chosen).__name__}"
            )
        self.options = cast(OptionsT, chosen)

    def state_dict(self) -> dict[str, Any]:
        """State to checkpoint between steps (JSON-serializable); stateless components keep {}."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""

    def prepare(self, backend: Backend) -> dict[str, Any]:
        """Set up what needs the loaded task model before the first step (a second runtime, a
        vocabulary scan); return the facts worth recording (config.json ``runtime``, run.log)."""
        return {}


# --------------------------------------------------------------------------- tasks and models


class Task(Component[OptionsT]):
    """A benchmark: examples per split, the answer extractor, a parser and a scorer (right or
    wrong with :meth:`is_correct`, graded from 0 to 1 with :meth:`score`)."""

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

    def score(self, predicted: str | None, output: str, example: Example) -> float:
        """How right ``predicted`` (the parsed answer, None when none was found) is, from 0 to
        1; ``output`` is the raw model output (reasoning, then answer text). Default: 1.0 when
        :meth:`is_correct`, else 0.0; tasks with graded metrics override it."""
        return 1.0 if self.is_correct(predicted, example) else 0.0

    @property
    def metric_name(self) -> str:
        """The name of the metric :meth:`score` applies, shown in reports (default
        ``"exact"``: :meth:`is_correct`)."""
        return "exact"

    def user_turn(self, example: Example, prompt: Prompt) -> str:
        """The user message: the question, then the prompt being optimized.

        By default GReaTer's layout, ``{question}. Use {prompt}``: a question that already ends
        a sentence ("?", ".", "!", ":") gets a space instead of a second full stop. A prompt
        with its own ``separator`` (GPO: a new line) is joined with that; the empty prompt
        leaves the bare question."""
        question = example.question.rstrip()
        if not prompt.text.strip():
            return question
        if prompt.separator is not None:
            return f"{question}{prompt.separator}{prompt.text}"
        joiner = " " if question.endswith(("?", ".", "!", ":")) else ". "
        return f"{question}{joiner}{prompt.text}"

    def split_sizes(self) -> dict[str, int]:
        """Sizes of the configured splits (loads the data)."""
        return {split: len(self.examples(split)) for split in ("train", "dev", "test")}

    @classmethod
    def identity(cls) -> dict[str, Any]:
        """What identifies this task's data beyond its name and options, e.g. a data file's
        content hash (``{"sha256": ...}``); ``{}`` for data fixed by the name. Recorded in a
        run's ``config.json``: a run resumes, and a study reuses it, only while it is equal."""
        return {}

    def describe(self) -> dict[str, Any]:
        """Facts about the loaded data worth showing (``promptopt run --dry-run``,
        ``promptopt eval``), e.g. the detected answer type and why; may load the data."""
        return {}


class Backend(Component[OptionsT]):
    """A model runtime: text in, text or log-probabilities out. Backends that also give logits
    and gradients subclass :class:`promptopt.whitebox.WhiteBoxBackend`."""

    kind: ClassVar[str] = "backend"
    #: Whether this backend loads GGUF model files (the default model is one): a study then
    #: evaluates such a model on llama.cpp, the runtime users deploy GGUF files with.
    loads_gguf: ClassVar[bool] = False

    def __init__(self, model: str | None, options: ComponentOptions | None = None) -> None:
        super().__init__(options)
        self.model_ref = model
        #: What this model has done so far (tokens, passes, requests); the loop reports deltas.
        self.usage = Usage()

    @property
    def parallel_width(self) -> int:
        """How many inputs this backend works on at once (a batch, decoding slots, requests in
        flight); callers such as evaluation hand it at least that many per call. Default 1."""
        return 1

    @property
    @abstractmethod
    def model_id(self) -> str:
        """A stable identifier of the loaded model (path or hub id), recorded in results."""

    @abstractmethod
    def chat(self, user: str, assistant_prefix: str = "") -> str:
        """The full model input for a single user turn, chat template and generation prompt
        applied (or a plain completion template for base models). ``user`` is plain text: only
        the template's own markers may be read as control tokens, never text inside ``user``.
        ``assistant_prefix`` (plain text too) starts the assistant's answer: :meth:`generate`
        continues after it, so its output is what follows the prefix (GPO prefills
        ``<START>`` so the optimizer's answer is in its tag format from the first token)."""

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

    @classmethod
    def identify(cls, model: str | None, options: ComponentOptions) -> dict[str, Any]:
        """What identifies the model ``model`` names, without loading it (result stores key on
        it): by default the reference and, for a local file or folder, its files' sizes and
        times. A backend whose reference can serve different models (a server URL) asks what
        is served; a model that cannot be reached is a one-line error here, before any work."""
        from promptopt.filehash import reference_identity

        return reference_identity(model)

    def fingerprint(self) -> dict[str, Any]:
        """Everything that identifies this backend's outputs (model content hash, quantization,
        sampling settings, template); evaluation caches key on it."""
        return {"backend": self.name, "model": self.model_id}

    def close(self) -> None:
        """Release model memory."""


# --------------------------------------------------------------------------- the four components


class Reasoner(Component[OptionsT]):
    """Generates reasoning chains for examples under a prompt."""

    kind: ClassVar[str] = "reasoner"

    @abstractmethod
    def reason(
        self, ctx: StepContext, prompts: Sequence[Prompt], examples: Sequence[Example]
    ) -> list[list[Chain]]:
        """Chains for every (prompt, example) pair: ``result[i][j]`` is prompt i on example j.
        Taking several prompts at once lets a backend batch candidate evaluation."""


class Proposer(Component[OptionsT]):
    """Suggests candidate prompts for the next step."""

    kind: ClassVar[str] = "proposer"

    @abstractmethod
    def propose(self, ctx: StepContext, prompt: Prompt) -> list[Candidate]:
        """Candidates derived from ``prompt`` (one member of ``ctx.population``). Ask
        ``ctx.chains(prompt)`` for its reasoning, ``ctx.history`` for earlier scores and
        ``ctx.optimizer`` for a prompt-writing model when the method needs them."""


class LossExtractor(Component[OptionsT]):
    """Extracts answers from reasoning and turns them into losses."""

    kind: ClassVar[str] = "loss_extractor"

    @abstractmethod
    def score_candidates(
        self, ctx: StepContext, prompt: Prompt, candidates: Sequence[Candidate]
    ) -> list[float]:
        """A score per candidate of ``prompt``, lower is better: a cheap proxy (GReaTer: the
        one-hot gradient over ``ctx.chains(prompt)``) or an exact loss."""

    @abstractmethod
    def evaluate(
        self, ctx: StepContext, prompts: Sequence[Prompt], *, split: Split = "train"
    ) -> list[PromptLoss]:
        """Exact losses of ``prompts`` on the examples of ``split`` (``ctx.examples(split)``:
        the step's training examples for ``"train"``), regenerating reasoning as needed; each
        :class:`PromptLoss` carries ``split``. Callers name the split they want (GReaTer's final
        choice and GPO evaluate on ``"dev"``); nothing else redirects an evaluation."""


class Selector(Component[OptionsT]):
    """Chooses the next prompt (or population) from scored candidates."""

    kind: ClassVar[str] = "selector"

    @abstractmethod
    def select(
        self,
        ctx: StepContext,
        prompt: Prompt,
        candidates: Sequence[Candidate],
        scores: Sequence[float],
    ) -> Selection:
        """The next prompt; ``prompt`` is the lead of ``ctx.population`` and ``candidates``
        come from every member (``candidate.meta["parent"]`` is the member's index). Exact
        evaluations go in ``Selection.evaluated`` (the loop adds them to ``ctx.history``);
        ``Selection.population`` sets several next prompts (a beam); ``Selection.stop`` ends
        the run early."""

    def finalists(self, history: History) -> list[Scored]:
        """The prompts the method's final choice considers, best first (default: the ten
        lowest-loss prompts of the run's history)."""
        return history.best(10)


# --------------------------------------------------------------------------- methods


class MethodOptions(ComponentOptions):
    """Options every method understands."""

    #: The step budget. None: the method counts its steps itself (GPO from the train size;
    #: its ``steps`` property says how), else asking for them is an error.
    steps: int | None = Field(default=100, ge=1)
    initial_prompt: str | None = None
    #: When the method's final prompt replaces the initial one (the loop decides, after
    #: ``finalize``): "paired" only when it beats it on the dev split by a one-sided paired
    #: test at alpha 0.05; "best": always (the method's own choice, whatever its margin).
    accept: AcceptRule = "paired"


MethodOptionsT = TypeVar("MethodOptionsT", bound=MethodOptions)


class Method(Component[MethodOptionsT]):
    """A named preset: which components to use, their default options, and how a run starts
    and ends. ``promptopt run greater --task folio -o steps=2`` picks the ``greater`` preset."""

    kind: ClassVar[str] = "method"
    Options: ClassVar[type[ComponentOptions]] = MethodOptions
    proposer: ClassVar[str]
    #: None: the method needs no reasoning chains (GPO scores by evaluation); a component that
    #: asks ``ctx.chains`` then gets a one-line error unless the user names one (``--reasoner``).
    reasoner: ClassVar[str | None] = None
    loss_extractor: ClassVar[str]
    selector: ClassVar[str]
    backend: ClassVar[str] = "hf"
    #: True when the method's components need logits and gradients (a white-box backend).
    needs_white_box: ClassVar[bool] = False
    #: True when the method writes prompts with a second model (``--optimizer-model``; the task
    #: model when none is given).
    uses_optimizer: ClassVar[bool] = False
    #: Option defaults per component kind, applied only to this method's own choice for that
    #: kind (e.g. ``{"selector": {"keep": 10}}``); the user's values win.
    defaults: ClassVar[dict[str, dict[str, Any]]] = {}
    #: Bare option keys this method gives to several of its components at once
    #: (e.g. ``{"reference_mode": ("reasoner", "proposer", "loss_extractor")}``).
    shared_options: ClassVar[dict[str, tuple[str, ...]]] = {}

    @property
    def steps(self) -> int:
        """The step budget (the ``steps`` option)."""
        if self.options.steps is None:
            raise PromptoptError(
                f"method {self.name!r} has no step count (steps=None)",
                hint="pass -o steps=N",
            )
        return self.options.steps

    @abstractmethod
    def initial_prompt(self, task: Task, backend: Backend) -> Prompt:
        """The prompt the run starts from."""

    def check_options(self, task: Task) -> None:
        """Reject bad option values before any model loads (raise PromptoptError)."""

    def initial_population(self, task: Task, backend: Backend) -> list[Prompt]:
        """The prompts the run starts from, lead first (a single prompt unless overridden)."""
        return [self.initial_prompt(task, backend)]

    def start(self, ctx: StepContext) -> list[PromptLoss]:
        """Evaluations to make before the first step (GPO scores its initial prompt on the dev
        split); they enter ``ctx.history`` as step -1."""
        return []

    def finalize(self, ctx: StepContext, initial: Prompt, selector: Selector) -> dict[str, Any]:
        """Choose the final prompt (e.g. on the dev split) among ``selector.finalists`` of the
        run's history and return result fields, at least ``{"best_prompt": str}``. The loop
        then applies the run's acceptance rule (the ``accept`` option,
        :mod:`promptopt.acceptance`): the choice replaces ``initial`` only when it passes."""
        best = selector.finalists(ctx.history)
        chosen = best[0].prompt if best else initial
        return {"best_prompt": chosen.text}

    def describe(self, task: Task) -> dict[str, Any]:
        """Extra facts ``promptopt run --dry-run`` shows for this method (no model loaded)."""
        return {}
