"""Tiny deterministic fake components, so plugin tests run a whole loop in milliseconds.

Everything here is pure Python and derived from hashes of its inputs: the same inputs always
give the same outputs, on every machine. Register them all by registering this module as a
plugin (the ``promptopt_fakes`` fixture does that for one test)::

    promptopt run fake --task fake/yes-no --plugin my_fakes.py   # my_fakes.py: see docs

Components: backend ``fake``, task ``fake/yes-no`` (:class:`ListTask`), method ``fake``,
proposer ``fake-words``, loss extractor ``fake-logprob``, selector ``fake-best``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from promptopt import hookimpl
from promptopt.components import (
    Backend,
    ComponentOptions,
    LossExtractor,
    Method,
    MethodOptions,
    Proposer,
    Selector,
    StepContext,
    Task,
    operational,
)
from promptopt.context import step_rng
from promptopt.errors import DataError, PromptoptError
from promptopt.history import History
from promptopt.metrics import model_output, task_score
from promptopt.progress import Progress
from promptopt.reasoners import ChatReasoner
from promptopt.sampling import is_greedy, sample_seed
from promptopt.types import (
    AnswerType,
    Candidate,
    Example,
    Prompt,
    PromptLoss,
    Selection,
    Split,
)

#: The fake vocabulary: prompt "tokens" are indices into this tuple (one word per token).
WORDS: tuple[str, ...] = (
    "careful",
    "logic",
    "and",
    "think",
    "step",
    "by",
    "check",
    "the",
    "answer",
    "twice",
    "reason",
    "clearly",
    "first",
    "then",
    "give",
    "final",
    "short",
    "words",
    ".",
)
_ANSWER_WORDS = ("Yes", "No")


def _digest(*parts: str) -> bytes:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest()


def encode_words(text: str) -> tuple[int, ...]:
    """Word ids of ``text`` in :data:`WORDS`; an unknown word is a PromptoptError."""
    ids = []
    for word in text.split():
        if word not in WORDS:
            raise PromptoptError(
                f"word {word!r} is not in the fake vocabulary",
                hint=f"use words from {', '.join(WORDS)}",
            )
        ids.append(WORDS.index(word))
    return tuple(ids)


def decode_words(tokens: Sequence[int]) -> str:
    """The text of word ids, each word preceded by a space (so ``prefix + decode`` reads well)."""
    return "".join(f" {WORDS[t]}" for t in tokens)


def word_prompt(words: str, prefix: str = "Use", position: int = 0) -> Prompt:
    """A token-level :class:`Prompt` over :data:`WORDS`: ``text == prefix + decode(tokens)``."""
    tokens = encode_words(words)
    return Prompt(prefix + decode_words(tokens), tokens=tokens, position=position, prefix=prefix)


# --------------------------------------------------------------------------- backend


class FakeBackendOptions(ComponentOptions):
    fake_salt: str = ""  # change it to get a different (still deterministic) fake model
    #: requests at once: changes nothing the fake outputs (operational, like a timeout)
    fake_workers: int = operational(1, ge=1)


class FakeBackend(Backend[FakeBackendOptions]):
    """Text in, deterministic text out: outputs and log-probabilities come from SHA-256 hashes."""

    name = "fake"
    description = "deterministic hash-based fake model, for tests (no weights)"
    Options = FakeBackendOptions

    @property
    def model_id(self) -> str:
        return f"fake:{self.model_ref or 'default'}"

    def chat(self, user: str, assistant_prefix: str = "") -> str:
        return f"<|user|>\n{user}\n<|assistant|>\n{assistant_prefix}"

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
        self.usage.record(requests=1, prompt_tokens=sum(len(t.split()) for t in texts) * n)
        outputs = []
        for i, text in enumerate(texts):
            for j in range(n):
                salt = "" if is_greedy(temperature) else f"{sample_seed(seed or 0, i, j)}"
                outputs.append(self._continue(text, max_new_tokens, stop, salt))
        self.usage.record(generated_tokens=sum(len(o.split()) for o in outputs))
        return outputs

    def _continue(self, text: str, max_new_tokens: int, stop: Sequence[str], salt: str) -> str:
        parts = (salt, text) if salt else (text,)  # greedy outputs stay what they always were
        digest = _digest(self.options.fake_salt, *parts)
        vocabulary = WORDS + _ANSWER_WORDS
        count = min(max_new_tokens, 2 + digest[0] % 6)
        out = "".join(f" {vocabulary[b % len(vocabulary)]}" for b in digest[1 : 1 + count])
        for marker in stop:
            if marker and marker in out:
                out = out[: out.index(marker)]
        return out

    def continuation_logprobs(self, prefix: str, continuations: Sequence[str]) -> list[float]:
        read = len(prefix.split()) * len(continuations) + sum(len(c.split()) for c in continuations)
        self.usage.record(requests=1, forward_passes=1, prompt_tokens=read)
        values = []
        for text in continuations:
            if not text:
                values.append(0.0)  # nothing to score: log 1
                continue
            digest = _digest(self.options.fake_salt, prefix, text)
            per_word = 0.25 + int.from_bytes(digest[:4], "big") / 2**32 * 2.0
            values.append(-per_word * max(1, len(text.split())))
        return values


# --------------------------------------------------------------------------- task


def _yes_no_examples(split: str, count: int) -> tuple[Example, ...]:
    offset = {"train": 0, "dev": 100, "test": 200}[split]
    examples = []
    for i in range(count):
        a, b = (offset + 7 * i) % 23, (offset + 11 * i + 5) % 19
        answer = "Yes" if a > b else "No"
        examples.append(Example(f"{split}-{i}", f"Is {a} greater than {b}?", answer, _ANSWER_WORDS))
    return tuple(examples)


class ListTask(Task[ComponentOptions]):
    """An in-memory Yes/No task; make your own with :meth:`with_examples`."""

    name = "fake/yes-no"
    description = "in-memory Yes/No comparisons (fake, for tests)"
    answer_type = AnswerType.BINARY
    #: The examples of each split, given in code.
    data: ClassVar[dict[str, tuple[Example, ...]]] = {
        "train": _yes_no_examples("train", 4),
        "dev": _yes_no_examples("dev", 3),
        "test": _yes_no_examples("test", 3),
    }
    _ANSWER = re.compile(r"\b(Yes|No)\b")

    @classmethod
    def with_examples(
        cls,
        name: str,
        train: Sequence[Example],
        dev: Sequence[Example] = (),
        test: Sequence[Example] = (),
    ) -> type[ListTask]:
        """A ListTask subclass named ``name`` holding these examples (answers "Yes" or "No")."""
        data = {"train": tuple(train), "dev": tuple(dev), "test": tuple(test)}
        return type("ListTask_" + re.sub(r"\W", "_", name), (cls,), {"name": name, "data": data})

    def examples(self, split: Split) -> list[Example]:
        examples = list(self.data.get(split, ()))
        if not examples:
            raise DataError(
                f"task {self.name!r} has no {split} examples",
                hint="pass them to ListTask.with_examples",
            )
        return examples

    def extractor(self, example: Example) -> str:
        return "Therefore, the final answer is"

    def continuation(self, answer: str) -> str:
        return f" {answer}"

    def parse(self, text: str) -> str | None:
        found = self._ANSWER.findall(text)
        return found[-1] if found else None


# --------------------------------------------------------------------------- the four components


class FakeWordsOptions(ComponentOptions):
    fake_candidates: int = 4


class FakeWordProposer(Proposer[FakeWordsOptions]):
    """Candidates put random words (and the current one) at ``prompt.position``."""

    name = "fake-words"
    description = "random word substitutions at the current position (fake, for tests)"
    Options = FakeWordsOptions

    def propose(self, ctx: StepContext, prompt: Prompt) -> list[Candidate]:
        tokens = prompt.tokens if prompt.tokens is not None else encode_words(prompt.text)
        if not tokens:
            return []
        pos = prompt.position % len(tokens)
        others = [i for i in range(len(WORDS)) if i != tokens[pos]]
        count = min(self.options.fake_candidates, len(others))
        choices = [tokens[pos], *ctx.rng.sample(others, count)]
        candidates = []
        for word in choices:
            new = (*tokens[:pos], word, *tokens[pos + 1 :])
            text = prompt.prefix + decode_words(new)
            edited = dataclasses.replace(prompt, text=text, tokens=new, position=pos)
            candidates.append(Candidate(edited, WORDS[word]))
        return candidates


def _answer_prefix(ctx: StepContext, example: Example, prompt: Prompt, reasoning: str = "") -> str:
    context = ctx.backend.chat(ctx.task.user_turn(example, prompt))
    return f"{context}{reasoning.rstrip()} {ctx.task.extractor(example)}"


class FakeLossExtractor(LossExtractor[ComponentOptions]):
    """Loss = mean negative log-probability of the gold continuation after the extractor."""

    name = "fake-logprob"
    description = "answer log-probability loss without gradients (fake, for tests)"

    def score_candidates(
        self, ctx: StepContext, prompt: Prompt, candidates: Sequence[Candidate]
    ) -> list[float]:
        return [self._nll(ctx, c.prompt, ctx.train, [""] * len(ctx.train)) for c in candidates]

    def evaluate(
        self, ctx: StepContext, prompts: Sequence[Prompt], *, split: Split = "train"
    ) -> list[PromptLoss]:
        examples = ctx.examples(split)
        chains = ctx.reason(prompts, examples)
        losses = []
        for prompt, row in zip(prompts, chains, strict=True):
            reasonings = [chain.reasoning for chain in row]
            lost = 0.0  # 1 - score per example: the error rate's numerator
            scores: dict[str, float] = {}  # per example, kept for the acceptance rule
            for example, reasoning in zip(examples, reasonings, strict=True):
                options = example.options or (example.answer,)
                prefix = _answer_prefix(ctx, example, prompt, reasoning)
                conts = [ctx.task.continuation(option) for option in options]
                logprobs = ctx.backend.continuation_logprobs(prefix, conts)
                best = max(range(len(options)), key=lambda j: logprobs[j])
                output = model_output(reasoning, conts[best])
                scores[example.id] = task_score(ctx.task, options[best], output, example)
                lost += 1.0 - scores[example.id]
            loss = self._nll(ctx, prompt, examples, reasonings)
            error = lost / max(1, len(examples))
            losses.append(PromptLoss(prompt, loss, error, split=split, outcomes=scores))
        return losses

    @staticmethod
    def _nll(
        ctx: StepContext,
        prompt: Prompt,
        examples: Sequence[Example],
        reasonings: Sequence[str],
    ) -> float:
        total = 0.0
        for example, reasoning in zip(examples, reasonings, strict=True):
            prefix = _answer_prefix(ctx, example, prompt, reasoning)
            total -= ctx.backend.continuation_logprobs(prefix, [ctx.task.target(example)])[0]
        return total / max(1, len(examples))


def next_position(prompt: Prompt) -> Prompt:
    """``prompt`` with its edit position moved to the next token (back to 0 after the last)."""
    size = len(prompt.tokens) if prompt.tokens else 0
    position = (prompt.position + 1) % size if size else 0
    return dataclasses.replace(prompt, position=position)


class FakeBestOptions(ComponentOptions):
    fake_shortlist: int = 2
    fake_keep: int = 3


class FakeBestSelector(Selector[FakeBestOptions]):
    """Evaluates the best-scored candidates exactly, keeps the lowest loss, moves the position."""

    name = "fake-best"
    description = "exact evaluation of a shortlist, keeps the best prompts (fake, for tests)"
    Options = FakeBestOptions

    def __init__(self, options: ComponentOptions | None = None) -> None:
        super().__init__(options)
        self.best: list[PromptLoss] = []  # the selector's own state, checkpointed

    def select(
        self,
        ctx: StepContext,
        prompt: Prompt,
        candidates: Sequence[Candidate],
        scores: Sequence[float],
    ) -> Selection:
        if not candidates:
            return Selection(next_position(prompt), None, reason="no candidates")
        order = sorted(range(len(candidates)), key=lambda i: (scores[i], i))
        shortlist = [candidates[i].prompt for i in order[: self.options.fake_shortlist]]
        evaluated = ctx.loss_extractor.evaluate(ctx, shortlist)
        chosen = min(evaluated, key=lambda e: e.loss)
        self._remember(chosen)
        return Selection(next_position(chosen.prompt), chosen.loss, evaluated=tuple(evaluated))

    def _remember(self, entry: PromptLoss) -> None:
        kept = [e for e in self.best if e.prompt.text != entry.prompt.text] + [entry]
        self.best = sorted(kept, key=lambda e: e.loss)[: self.options.fake_keep]

    def state_dict(self) -> dict[str, Any]:
        return {"best": [e.to_dict() for e in self.best]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = [PromptLoss.from_dict(e) for e in state.get("best", [])]


# --------------------------------------------------------------------------- method


class FakeMethodOptions(MethodOptions):
    steps: int = 3


class FakeMethod(Method[FakeMethodOptions]):
    """A preset of the fakes: word substitutions, chat reasoning, log-probability loss."""

    name = "fake"
    description = "fake components end to end, for tests (runs in milliseconds)"
    proposer = "fake-words"
    reasoner = ChatReasoner.name
    loss_extractor = "fake-logprob"
    selector = "fake-best"
    backend = "fake"
    defaults: ClassVar[dict[str, dict[str, Any]]] = {"reasoner": {"max_new_tokens": 8}}
    Options = FakeMethodOptions

    def initial_prompt(self, task: Task, backend: Backend) -> Prompt:
        text = self.options.initial_prompt or "think step by step ."
        return word_prompt(text)


def fake_context(
    *,
    task: Task | None = None,
    backend: Backend | None = None,
    step: int = 0,
    seed: int = 0,
    max_new_tokens: int = 8,
    population: Sequence[Prompt] = (),
    history: History | None = None,
) -> StepContext:
    """A real :class:`StepContext` over the fakes (chat reasoner, log-probability loss)."""
    task = task if task is not None else ListTask()
    return StepContext(
        step=step,
        task=task,
        backend=backend if backend is not None else FakeBackend(None),
        reasoner=ChatReasoner(ChatReasoner.Options(max_new_tokens=max_new_tokens)),
        loss_extractor=FakeLossExtractor(),
        train=task.examples("train"),
        rng=step_rng(seed, step),
        progress=Progress(enabled=False),
        history=history if history is not None else History(),
        population=tuple(population) or (word_prompt("think step by step ."),),
        seed=seed,
    )


# --------------------------------------------------------------------------- registration


@hookimpl
def register_backends(register: Callable[[type[Backend]], None]) -> None:
    register(FakeBackend)


@hookimpl
def register_tasks(register: Callable[[type[Task]], None]) -> None:
    register(ListTask)


@hookimpl
def register_methods(register: Callable[[type[Method]], None]) -> None:
    register(FakeMethod)


@hookimpl
def register_proposers(register: Callable[[type[Proposer]], None]) -> None:
    register(FakeWordProposer)


@hookimpl
def register_loss_extractors(register: Callable[[type[LossExtractor]], None]) -> None:
    register(FakeLossExtractor)


@hookimpl
def register_selectors(register: Callable[[type[Selector]], None]) -> None:
    register(FakeBestSelector)
