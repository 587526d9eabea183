"""Plain data passed between components: examples, prompts, reasoning chains, candidates."""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass, field
from enum import Enum
from typing import Any, Literal, TypeGuard

Split = Literal["train", "dev", "test"]
SPLITS: tuple[Split, ...] = ("train", "dev", "test")


#: The suffixes of the data files users may pass as ``--task`` (a task plugin reads them through
#: the ``resolve_task`` hook; the core only names them in messages and folder names).
DATA_FILE_SUFFIXES: tuple[str, ...] = (".csv", ".tsv", ".jsonl", ".json", ".parquet")


def is_split(value: str) -> TypeGuard[Split]:
    """True when ``value`` names a split (train, dev or test)."""
    return value in SPLITS


class AnswerType(str, Enum):
    """How a task's gold answer looks, which decides its extractor wording and parser."""

    MULTIPLE_CHOICE = "multiple_choice"  # a letter: "A", "B", ...
    BINARY = "binary"  # a word pair: Yes/No, True/False, valid/invalid, plausible/implausible
    INTEGER = "integer"  # a signed integer, e.g. "-42"
    FREE_TEXT = "free_text"  # e.g. a bracket sequence or a sorted word list


@dataclass(frozen=True)
class Example:
    """One task example: ``question`` is already formatted (options included); ``answer`` is
    the normalized gold answer, the exact text the task's parser returns for a correct output."""

    id: str
    question: str
    answer: str
    options: tuple[str, ...] = ()  # the normalized answers to score by log-probability, if closed


@dataclass(frozen=True)
class Prompt:
    """An instruction shown after each question.

    Text-space methods set ``text`` only. Token-level methods also keep the editable ``tokens``
    (ids in the backend's vocabulary), the ``position`` they edit next and a fixed ``prefix``
    (GReaTer's "Use"); then ``text == prefix + decode(tokens)``.
    """

    text: str
    _: KW_ONLY  # the rest by name: a Prompt built positionally lost its separator before
    tokens: tuple[int, ...] | None = None
    position: int = 0
    prefix: str = ""
    #: What joins the question and the prompt; None: the task's default (GReaTer's sentence
    #: layout, see :meth:`promptopt.components.Task.user_turn`). GPO puts its prompts on a new
    #: line ("\n").
    separator: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "text": self.text,
            "tokens": list(self.tokens) if self.tokens is not None else None,
            "position": self.position,
            "prefix": self.prefix,
        }
        if self.separator is not None:
            data["separator"] = self.separator
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Prompt:
        tokens = data.get("tokens")
        separator = data.get("separator")
        return cls(
            text=data["text"],
            tokens=tuple(tokens) if tokens is not None else None,
            position=int(data.get("position", 0)),
            prefix=data.get("prefix", ""),
            separator=str(separator) if separator is not None else None,
        )


@dataclass(frozen=True)
class Chain:
    """A reasoning chain: ``context`` is the exact model input (chat template applied) and
    ``reasoning`` the generated continuation, so ``context + reasoning`` is what the model saw.
    White-box reasoners also keep the exact generated token ``ids`` (re-encoding the text may
    give other ids)."""

    example_id: str
    context: str
    reasoning: str
    ids: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Candidate:
    """A prompt a proposer suggests, with a short human label (e.g. the token it places)."""

    prompt: Prompt
    label: str
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PromptLoss:
    """An exact evaluation of one prompt on the examples of ``split`` (lower ``loss`` is
    better; ``error_rate`` is 1 - the mean score under the task's metric: the share of examples
    answered wrongly, for right-or-wrong metrics). ``outcomes``, when the evaluator keeps them:
    each example's score in [0, 1] by example id, which lets the run's acceptance rule compare
    prompts example by example without evaluating them again."""

    prompt: Prompt
    loss: float
    error_rate: float
    details: dict[str, float] = field(default_factory=dict)
    split: str = "train"
    outcomes: dict[str, float] = field(default_factory=dict)

    @property
    def accuracy(self) -> float:
        """The mean score, 1 - ``error_rate`` (an accuracy for right-or-wrong metrics)."""
        return 1.0 - self.error_rate

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values, for checkpoints and step records (``outcomes`` only when kept)."""
        data: dict[str, Any] = {
            "prompt": self.prompt.to_dict(),
            "loss": self.loss,
            "error_rate": self.error_rate,
            "details": dict(self.details),
            "split": self.split,
        }
        if self.outcomes:
            data["outcomes"] = dict(self.outcomes)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PromptLoss:
        return cls(
            prompt=Prompt.from_dict(data["prompt"]),
            loss=float(data["loss"]),
            error_rate=float(data["error_rate"]),
            details={str(k): float(v) for k, v in data.get("details", {}).items()},
            split=str(data.get("split", "train")),
            outcomes={str(k): float(v) for k, v in (data.get("outcomes") or {}).items()},
        )


@dataclass(frozen=True)
class Selection:
    """What a selector decided for one step: the next prompt (the lead of the next population),
    optionally the whole next ``population`` (lead first; empty means just ``prompt``), the
    exact evaluations it made (they enter the run's history) and whether to stop."""

    prompt: Prompt
    loss: float | None
    stop: bool = False
    reason: str = ""
    evaluated: tuple[PromptLoss, ...] = ()
    population: tuple[Prompt, ...] = ()

    @property
    def next_population(self) -> tuple[Prompt, ...]:
        """The prompts the next step starts from, lead first."""
        return self.population or (self.prompt,)
