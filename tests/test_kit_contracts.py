"""The contract checks pass on good components and catch each broken rule with a clear message."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, ClassVar

import pytest
from pydantic import ConfigDict

from promptopt.components import ComponentOptions, Selector, StepContext
from promptopt.errors import PromptoptError
from promptopt.reasoners import ChatReasoner
from promptopt.testing.contracts import (
    check_backend,
    check_loss_extractor,
    check_method,
    check_proposer,
    check_reasoner,
    check_selector,
    check_task,
)
from promptopt.testing.fakes import (
    FakeBackend,
    FakeBestSelector,
    FakeLossExtractor,
    FakeMethod,
    FakeWordProposer,
    ListTask,
    fake_context,
    word_prompt,
)
from promptopt.types import Candidate, Chain, Example, Prompt, PromptLoss, Selection


def test_good_components_pass() -> None:
    check_task(ListTask())
    check_selector(FakeBestSelector)
    check_selector(FakeBestSelector, options=FakeBestSelector.Options(fake_shortlist=1))
    check_proposer(FakeWordProposer)
    check_proposer(FakeWordProposer, options={"fake_candidates": 2}, prompt=word_prompt("then"))
    check_reasoner(ChatReasoner, options={"max_new_tokens": 8})
    check_loss_extractor(FakeLossExtractor)


# --------------------------------------------------------------------------- broken tasks


def _examples(*answers: str, ids: Sequence[str] | None = None) -> tuple[Example, ...]:
    ids = ids or [f"e{i}" for i in range(len(answers))]
    return tuple(Example(i, f"q{i}", a, ("Yes", "No")) for i, a in zip(ids, answers, strict=True))


def _task(**overrides: Any) -> ListTask:
    data = {"train": _examples("Yes", "No"), "dev": _examples("No"), "test": _examples("Yes")}
    data.update(overrides.pop("data", {}))
    cls = type("Broken", (ListTask,), {"name": "broken", "data": data, **overrides})
    return cls()


class LooseOptions(ComponentOptions):
    model_config = ConfigDict(extra="allow", frozen=True)


BROKEN_TASKS = {
    "empty split": (_task(data={"dev": ()}), "has no dev examples"),
    "duplicate ids": (_task(data={"train": _examples("Yes", "No", ids=["x", "x"])}), "repeats"),
    "parser cannot read back": (
        _task(parse=lambda self, text: text.strip().lower() or None),
        "parse\\(extractor \\+ continuation\\(answer\\)\\) gave",
    ),
    "extractor parses alone": (
        _task(extractor=lambda self, ex: "Answer Yes or No:"),
        "the extractor alone parses to 'No'",
    ),
    "answer not among options": (
        _task(data={"test": (Example("t", "q", "Yes", ("No", "Maybe")),)}),
        "do not contain the answer",
    ),
    "everything is correct": (
        _task(is_correct=lambda self, predicted, ex: predicted is not None),
        "is_correct\\('No'\\) is True",
    ),
    "gold answer scores below 1": (
        _task(score=lambda self, predicted, output, ex: 0.5),
        "score\\('Yes', 'Yes', example\\) is 0.5, not 1.0",
    ),
    "score outside [0, 1]": (
        _task(score=lambda self, predicted, output, ex: 2.0),
        "score\\('Yes', ...\\) failed: .* returned 2.0 .* outside \\[0, 1\\]",
    ),
    "options accept unknown keys": (_task(Options=LooseOptions), "accepts unknown keys"),
    "prompt never reaches the model": (
        _task(user_turn=lambda self, ex, prompt: ex.question),
        "drops the prompt text",
    ),
    "no description": (_task(description=""), "description"),
}


@pytest.mark.parametrize("case", list(BROKEN_TASKS))
def test_check_task_catches(case: str) -> None:
    task, message = BROKEN_TASKS[case]
    with pytest.raises(AssertionError, match=message) as info:
        check_task(task)
    assert "task 'broken'" in str(info.value) or "Broken" in str(info.value)


# --------------------------------------------------------------------------- broken selectors


class Invents(FakeBestSelector):
    name = "invents"

    def select(
        self,
        ctx: StepContext,
        prompt: Prompt,
        candidates: Sequence[Candidate],
        scores: Sequence[float],
    ) -> Selection:
        return Selection(Prompt("something else entirely"), 1.0)


class Drifting(FakeBestSelector):
    name = "drifting"
    calls: ClassVar[list[int]] = []  # shared state instead of ctx.rng: each call differs

    def select(
        self,
        ctx: StepContext,
        prompt: Prompt,
        candidates: Sequence[Candidate],
        scores: Sequence[float],
    ) -> Selection:
        self.calls.append(1)
        return Selection(candidates[len(self.calls) % len(candidates)].prompt, None)


class NanLoss(FakeBestSelector):
    name = "nan-loss"

    def select(
        self,
        ctx: StepContext,
        prompt: Prompt,
        candidates: Sequence[Candidate],
        scores: Sequence[float],
    ) -> Selection:
        return Selection(prompt, float("nan"))


class SetState(FakeBestSelector):
    name = "set-state"

    def state_dict(self) -> dict[str, Any]:
        return {"seen": {1, 2}}


class ForgetsState(FakeBestSelector):
    name = "forgets-state"

    def load_state_dict(self, state: dict[str, Any]) -> None:
        return None


class ReturnsText(FakeBestSelector):
    name = "returns-text"

    def select(
        self,
        ctx: StepContext,
        prompt: Prompt,
        candidates: Sequence[Candidate],
        scores: Sequence[float],
    ) -> Any:
        return prompt.text


class PositionOutOfRange(FakeBestSelector):
    name = "bad-position"

    def select(
        self,
        ctx: StepContext,
        prompt: Prompt,
        candidates: Sequence[Candidate],
        scores: Sequence[float],
    ) -> Selection:
        return Selection(replace(prompt, position=99), None)


class NanEvaluated(FakeBestSelector):
    name = "nan-evaluated"

    def select(
        self,
        ctx: StepContext,
        prompt: Prompt,
        candidates: Sequence[Candidate],
        scores: Sequence[float],
    ) -> Selection:
        bad = PromptLoss(word_prompt("think"), float("inf"), 0.0)
        return Selection(prompt, None, evaluated=(bad,))


class BadPopulation(FakeBestSelector):
    name = "bad-population"

    def select(
        self,
        ctx: StepContext,
        prompt: Prompt,
        candidates: Sequence[Candidate],
        scores: Sequence[float],
    ) -> Selection:
        return Selection(prompt, None, population=(prompt, prompt.text))  # type: ignore[arg-type]


BROKEN_SELECTORS = {
    Invents: "neither the current prompt nor a candidate",
    Drifting: "not deterministic",
    NanLoss: "neither finite nor None",
    SetState: "not JSON-serializable",
    ForgetsState: "does not restore the same state",
    ReturnsText: "not a Selection",
    PositionOutOfRange: "position 99 is outside",
    NanEvaluated: "Selection.evaluated holds a non-finite loss",
    BadPopulation: "Selection.population holds str",
}


@pytest.mark.parametrize("cls", list(BROKEN_SELECTORS), ids=lambda c: c.name)
def test_check_selector_catches(cls: type[FakeBestSelector]) -> None:
    with pytest.raises(AssertionError, match=BROKEN_SELECTORS[cls]) as info:
        check_selector(cls)
    assert f"selector {cls.name!r}" in str(info.value)


def test_check_selector_uses_the_given_inputs() -> None:
    prompt = word_prompt("check the answer")
    candidates = [Candidate(word_prompt("first the answer"), "first")]
    ctx = fake_context(seed=5)
    check_selector(
        FakeBestSelector, prompt=prompt, candidates=candidates, scores=[0.0], context=ctx
    )
    with pytest.raises(ValueError, match="one score per candidate"):
        check_selector(FakeBestSelector, prompt=prompt, candidates=candidates, scores=[])


# --------------------------------------------------------------------------- backends


class ChatRewrites(FakeBackend):
    name = "chat-rewrites"

    def chat(self, user: str) -> str:
        return super().chat(user.replace("?", " ?"))


class GreedyByBatch(FakeBackend):
    name = "greedy-by-batch"

    def generate(self, texts: Sequence[str], **kwargs: Any) -> list[str]:
        return [t + str(len(texts)) for t in super().generate(texts, **kwargs)]


class IgnoresStop(FakeBackend):
    name = "ignores-stop"

    def generate(self, texts: Sequence[str], **kwargs: Any) -> list[str]:
        return super().generate(texts, **{**kwargs, "stop": ()})


class GreedyIgnoresN(FakeBackend):
    name = "greedy-ignores-n"

    def generate(self, texts: Sequence[str], **kwargs: Any) -> list[str]:
        if kwargs.get("temperature", 0.0) == 0.0:
            kwargs["n"] = 1
        return super().generate(texts, **kwargs)


class OneSeedPerCall(FakeBackend):
    """Every sample of a call drawn with the call's seed: the n samples of a text are equal."""

    name = "one-seed-per-call"

    def _continue(self, text: str, max_new_tokens: int, stop: Sequence[str], salt: str) -> str:
        return super()._continue(text, max_new_tokens, stop, "same" if salt else "")


class SeedsByBatch(FakeBackend):
    """Sample seeds counted over the whole call instead of (text, sample)."""

    name = "seeds-by-batch"

    def generate(self, texts: Sequence[str], **kwargs: Any) -> list[str]:
        if kwargs.get("temperature", 0.0) > 0:
            kwargs["seed"] = (kwargs.get("seed") or 0) + len(texts)
        return super().generate(texts, **kwargs)


class CountsNothing(FakeBackend):
    name = "counts-nothing"

    def generate(self, texts: Sequence[str], **kwargs: Any) -> list[str]:
        out = super().generate(texts, **kwargs)
        self.usage = type(self.usage)()
        return out


class PositiveLogprobs(FakeBackend):
    name = "positive-logprobs"

    def continuation_logprobs(self, prefix: str, continuations: Sequence[str]) -> list[float]:
        return [-v for v in super().continuation_logprobs(prefix, continuations)]


class EmptyCostsSomething(FakeBackend):
    name = "empty-costs"

    def continuation_logprobs(self, prefix: str, continuations: Sequence[str]) -> list[float]:
        return [v - 1.0 for v in super().continuation_logprobs(prefix, continuations)]


class DriftingFingerprint(FakeBackend):
    name = "drifting-fingerprint"
    calls: ClassVar[list[int]] = []

    def fingerprint(self) -> dict[str, Any]:
        self.calls.append(1)
        return {**super().fingerprint(), "calls": len(self.calls)}


class ParsesMarkers(FakeBackend):
    """Tokenizes the template's markers as control tokens wherever they are written."""

    name = "parses-markers"

    @staticmethod
    def tokenize(text: str) -> list[int]:
        return [1 if piece in ("<|user|>", "<|assistant|>") else 0 for piece in text.split()]


BROKEN_BACKENDS: dict[type[FakeBackend], str] = {
    ChatRewrites: "keep the user text whole",
    GreedyByBatch: "greedy text depends on batching",
    IgnoresStop: "it must end before the first stop string",
    GreedyIgnoresN: "greedy generate\\(n=2\\)",
    OneSeedPerCall: "the n=2 samples of every text are equal",
    SeedsByBatch: "the samples of the first text changed",
    CountsNothing: "must count a request",
    PositiveLogprobs: "finite and <= 0",
    EmptyCostsSomething: "the empty continuation's log-probability must be 0",
    DriftingFingerprint: "changed between two calls",
}


@pytest.mark.parametrize("cls", list(BROKEN_BACKENDS), ids=lambda c: c.name)
def test_check_backend_catches(cls: type[FakeBackend]) -> None:
    with pytest.raises(AssertionError, match=BROKEN_BACKENDS[cls]) as info:
        check_backend(cls(None))
    assert f"backend {cls.name!r}" in str(info.value)


def test_check_backend_reads_control_tokens_where_token_ids_are_known() -> None:
    backend = ParsesMarkers(None)
    check_backend(backend)  # no token view: the text-level rules hold
    with pytest.raises(AssertionError, match="control tokens, a plain one"):
        check_backend(backend, tokenize=backend.tokenize, control_ids={1})


class RefusesLoudly(FakeBackend):
    name = "refuses-loudly"

    def chat(self, user: str) -> str:
        if "<|user|>" in user:
            raise PromptoptError("refused\nover two lines")
        return super().chat(user)


def test_a_refusal_of_marker_text_is_one_line() -> None:
    with pytest.raises(AssertionError, match="a refusal must be one line"):
        check_backend(RefusesLoudly(None))


# --------------------------------------------------------------------------- proposers


class ProposesText(FakeWordProposer):
    name = "proposes-text"

    def propose(self, ctx: StepContext, prompt: Prompt) -> Any:
        return [c.prompt.text for c in super().propose(ctx, prompt)]


class ProposesByCount(FakeWordProposer):
    name = "proposes-by-count"
    calls: ClassVar[list[int]] = []

    def propose(self, ctx: StepContext, prompt: Prompt) -> list[Candidate]:
        self.calls.append(1)
        return super().propose(ctx, prompt)[: 1 + len(self.calls) % 2]


class EmptiesPopulation(FakeWordProposer):
    name = "empties-population"

    def propose(self, ctx: StepContext, prompt: Prompt) -> list[Candidate]:
        ctx.population = ()
        return super().propose(ctx, prompt)


BROKEN_PROPOSERS = {
    ProposesText: "not a Candidate",
    ProposesByCount: "not deterministic",
    EmptiesPopulation: "changed ctx.population",
}


@pytest.mark.parametrize("cls", list(BROKEN_PROPOSERS), ids=lambda c: c.name)
def test_check_proposer_catches(cls: type[FakeWordProposer]) -> None:
    with pytest.raises(AssertionError, match=BROKEN_PROPOSERS[cls]):
        check_proposer(cls)


# --------------------------------------------------------------------------- reasoners


class Transposed(ChatReasoner):
    name = "transposed"

    def reason(
        self, ctx: StepContext, prompts: Sequence[Prompt], examples: Sequence[Example]
    ) -> list[list[Chain]]:
        rows = super().reason(ctx, prompts, examples)
        return [list(column) for column in zip(*rows, strict=True)] + [[]]


class ForgetsPrompt(ChatReasoner):
    name = "forgets-prompt"

    def reason(
        self, ctx: StepContext, prompts: Sequence[Prompt], examples: Sequence[Example]
    ) -> list[list[Chain]]:
        return super().reason(ctx, [Prompt("")] * len(prompts), examples)


class ReasonsByBatch(ChatReasoner):
    name = "reasons-by-batch"

    def reason(
        self, ctx: StepContext, prompts: Sequence[Prompt], examples: Sequence[Example]
    ) -> list[list[Chain]]:
        rows = super().reason(ctx, prompts, examples)
        return [[dataclasses.replace(c, reasoning=f"{len(prompts)}") for c in row] for row in rows]


BROKEN_REASONERS = {
    Transposed: "result\\[i\\]\\[j\\] must be prompt i on example j",
    ForgetsPrompt: "does not hold the prompt",
    ReasonsByBatch: "must not depend on batching",
}


@pytest.mark.parametrize("cls", list(BROKEN_REASONERS), ids=lambda c: c.name)
def test_check_reasoner_catches(cls: type[ChatReasoner]) -> None:
    with pytest.raises(AssertionError, match=BROKEN_REASONERS[cls]):
        check_reasoner(cls, options={"max_new_tokens": 8})


# --------------------------------------------------------------------------- loss extractors


class ScoresOneShort(FakeLossExtractor):
    name = "scores-one-short"

    def score_candidates(
        self, ctx: StepContext, prompt: Prompt, candidates: Sequence[Candidate]
    ) -> list[float]:
        return super().score_candidates(ctx, prompt, candidates)[1:]


class NanScore(FakeLossExtractor):
    name = "nan-score"

    def score_candidates(
        self, ctx: StepContext, prompt: Prompt, candidates: Sequence[Candidate]
    ) -> list[float]:
        return [float("nan")] * len(candidates)


class Reversed(FakeLossExtractor):
    name = "reversed"

    def evaluate(self, ctx: StepContext, prompts: Sequence[Prompt]) -> list[PromptLoss]:
        return super().evaluate(ctx, prompts)[::-1]


class ErrorRateAboveOne(FakeLossExtractor):
    name = "error-rate-above-one"

    def evaluate(self, ctx: StepContext, prompts: Sequence[Prompt]) -> list[PromptLoss]:
        return [dataclasses.replace(e, error_rate=2.0) for e in super().evaluate(ctx, prompts)]


class EvaluatesByBatch(FakeLossExtractor):
    name = "evaluates-by-batch"

    def evaluate(self, ctx: StepContext, prompts: Sequence[Prompt]) -> list[PromptLoss]:
        out = super().evaluate(ctx, prompts)
        return [dataclasses.replace(e, loss=e.loss + len(prompts)) for e in out]


BROKEN_LOSS_EXTRACTORS = {
    ScoresOneShort: "give one score per candidate",
    NanScore: "not finite",
    Reversed: "one PromptLoss per prompt, in order",
    ErrorRateAboveOne: "is not a share",
    EvaluatesByBatch: "must not depend on batching",
}


@pytest.mark.parametrize("cls", list(BROKEN_LOSS_EXTRACTORS), ids=lambda c: c.name)
def test_check_loss_extractor_catches(cls: type[FakeLossExtractor]) -> None:
    with pytest.raises(AssertionError, match=BROKEN_LOSS_EXTRACTORS[cls]):
        check_loss_extractor(cls)


# --------------------------------------------------------------------------- methods


def test_good_methods_pass() -> None:
    check_method(FakeMethod)
    check_method(FakeMethod, options={"selector.fake_shortlist": 1}, steps=3, seed=4)


class DefaultsTypo(FakeMethod):
    name = "defaults-typo"
    defaults: ClassVar[dict[str, dict[str, Any]]] = {"selector": {"fake_shortlst": 1}}


class DefaultsInvalid(FakeMethod):
    name = "defaults-invalid"
    defaults: ClassVar[dict[str, dict[str, Any]]] = {"reasoner": {"max_new_tokens": 0}}


class SharesUndeclared(FakeMethod):
    name = "shares-undeclared"
    shared_options: ClassVar[dict[str, tuple[str, ...]]] = {"fake_keep": ("selector", "proposer")}


class UnknownSelector(FakeMethod):
    name = "unknown-selector"
    selector = "no-such-selector"


class NoBestPrompt(FakeMethod):
    name = "no-best-prompt"

    def finalize(self, ctx: StepContext, initial: Prompt, selector: Selector) -> dict[str, Any]:
        return {"best": initial.text}


class InventsPrompt(FakeMethod):
    name = "invents-prompt"

    def finalize(self, ctx: StepContext, initial: Prompt, selector: Selector) -> dict[str, Any]:
        return {"best_prompt": "a prompt nobody evaluated"}


class PrivateRandom(FakeWordProposer):
    """Draws from its own generator, which no checkpoint holds: a resumed run differs."""

    name = "private-random"

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self.rng = random.Random(0)

    def propose(self, ctx: StepContext, prompt: Prompt) -> list[Candidate]:
        return super().propose(dataclasses.replace(ctx, rng=self.rng), prompt)


class NotResumable(FakeMethod):
    name = "not-resumable"
    proposer = "private-random"


BROKEN_METHODS = {
    DefaultsTypo: "sets \\['fake_shortlst'\\], which selector 'fake-best' does not declare",
    DefaultsInvalid: "defaults\\['reasoner'\\] do not validate",
    SharesUndeclared: "does not declare 'fake_keep'",
    UnknownSelector: "its selector is not registered",
    NoBestPrompt: "at least {'best_prompt': str}",
    InventsPrompt: "neither the initial prompt nor a prompt the run logged",
    NotResumable: "interrupted after its first step and resumed logged other steps",
}


@pytest.mark.parametrize("cls", list(BROKEN_METHODS), ids=lambda c: c.name)
def test_check_method_catches(cls: type[FakeMethod]) -> None:
    from promptopt.pluginmanager import new_plugin_manager
    from promptopt.registry import Registry

    registry = Registry.from_plugin_manager(new_plugin_manager(autoload=False))
    registry.add("proposer", PrivateRandom)
    with pytest.raises(AssertionError, match=BROKEN_METHODS[cls]) as info:
        check_method(cls, registry=registry)
    assert f"method {cls.name!r}" in str(info.value)
