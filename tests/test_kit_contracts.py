"""The contract checks pass on good components and catch each broken rule with a clear message."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, ClassVar

import pytest
from pydantic import ConfigDict

from promptopt.components import ComponentOptions, StepContext
from promptopt.testing.contracts import check_selector, check_task
from promptopt.testing.fakes import FakeBestSelector, ListTask, fake_context, word_prompt
from promptopt.types import Candidate, Example, Prompt, PromptLoss, Selection


def test_good_components_pass() -> None:
    check_task(ListTask())
    check_selector(FakeBestSelector)
    check_selector(FakeBestSelector, options=FakeBestSelector.Options(fake_shortlist=1))


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
