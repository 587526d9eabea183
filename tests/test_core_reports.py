"""No side channels between components: what a step reported is read back from the loop's step
reports (checkpointed, so a resumed run sees the same), a split is an argument of
``LossExtractor.evaluate``, and a method may name no reasoner."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import pytest

from promptopt import hookimpl
from promptopt.components import Selector, StepContext
from promptopt.errors import PromptoptError
from promptopt.records import StepReport
from promptopt.testing.fakes import (
    FakeBestSelector,
    FakeLossExtractor,
    FakeMethod,
    fake_context,
    next_position,
    word_prompt,
)
from promptopt.types import Candidate, Prompt, Selection


class CountingSelector(FakeBestSelector):
    """The fake selector, noting what it reads back from the earlier steps' reports."""

    name = "test-counting"

    def select(
        self,
        ctx: StepContext,
        prompt: Prompt,
        candidates: Sequence[Candidate],
        scores: Sequence[float],
    ) -> Selection:
        previous = ctx.previous
        ctx.note("previous_step", previous.step if previous is not None else None)
        ctx.note("previous_chosen", previous.get("chosen") if previous is not None else None)
        ctx.note("count", ctx.last_note("count", 0) + 1)
        selection = super().select(ctx, prompt, candidates, scores)
        ctx.note("chosen", (selection.prompt.text, selection.loss))  # a tuple: JSON makes a list
        return selection


class ScoreOnlySelector(Selector):
    """Takes the best-scored candidate without an exact evaluation (no reasoning needed)."""

    name = "test-score-only"

    def select(
        self,
        ctx: StepContext,
        prompt: Prompt,
        candidates: Sequence[Candidate],
        scores: Sequence[float],
    ) -> Selection:
        best = min(range(len(scores)), key=lambda i: (scores[i], i))
        return Selection(next_position(candidates[best].prompt), scores[best])


class NoReasoningMethod(FakeMethod):
    name = "test-no-reasoning"
    reasoner = None
    selector = "test-score-only"
    defaults: ClassVar[dict[str, dict[str, Any]]] = {}


class ReportsPlugin:
    @hookimpl
    def register_selectors(self, register: Callable[[type[Selector]], None]) -> None:
        register(CountingSelector)
        register(ScoreOnlySelector)

    @hookimpl
    def register_methods(self, register: Callable[[type[Any]], None]) -> None:
        register(NoReasoningMethod)


@pytest.fixture
def plugins(promptopt_fakes: Any, promptopt_register: Callable[..., Any]) -> None:
    promptopt_register(ReportsPlugin(), name="test-reports")


def test_later_steps_read_the_reports_of_earlier_ones(plugins: None, promptopt_run: Any) -> None:
    out = promptopt_run("fake", task="fake/yes-no", selector="test-counting", steps=3)
    notes = [step["notes"] for step in out.steps]
    assert [n["count"] for n in notes] == [1, 2, 3]
    assert [n["previous_step"] for n in notes] == [-1, 0, 1]  # step 0 sees the method's start
    assert notes[0]["previous_chosen"] is None
    assert [n["previous_chosen"] for n in notes[1:]] == [n["chosen"] for n in notes[:-1]]
    reports = json.loads((out.path / "checkpoint.json").read_text())["reports"]
    assert [r["step"] for r in reports] == [-1, 0, 1, 2]
    assert [r["notes"] for r in reports[1:]] == notes  # the same notes as steps.jsonl


def test_a_resumed_run_reads_the_same_reports(plugins: None, promptopt_run: Any) -> None:
    settings = {"task": "fake/yes-no", "selector": "test-counting", "steps": 4, "seed": 3}
    straight = promptopt_run("fake", **settings)
    stopped = promptopt_run("fake", **settings, interrupt_after=2)
    resumed = promptopt_run.resume(stopped.path)
    assert [s["notes"] for s in resumed.steps] == [s["notes"] for s in straight.steps]
    assert resumed.result["best_prompt"] == straight.result["best_prompt"]


def test_a_report_holds_its_notes_as_json_reads_them_back() -> None:
    report = StepReport.of(2, {"pair": (1, 2), "nested": {"t": ("a",)}})
    assert report.notes == {"pair": [1, 2], "nested": {"t": ["a"]}}
    assert StepReport.from_dict(json.loads(json.dumps(report.to_dict()))) == report
    assert report.get("missing", 7) == 7


def test_context_helpers_read_back_the_latest_notes() -> None:
    ctx = fake_context()
    assert ctx.previous is None and ctx.last_note("x") is None
    ctx.reports = (StepReport(-1, {"x": 1}), StepReport(0, {"y": 2}), StepReport(1, {}))
    assert ctx.previous == StepReport(1, {})
    assert ctx.last_note("x") == 1 and ctx.last_note("y") == 2 and ctx.last_note("z", 0) == 0


def test_evaluate_takes_the_split_as_an_argument() -> None:
    ctx = fake_context()
    prompt = word_prompt("think step by step .")
    extractor = FakeLossExtractor()
    (train,) = extractor.evaluate(ctx, [prompt])
    (dev,) = extractor.evaluate(ctx, [prompt], split="dev")
    assert (train.split, dev.split) == ("train", "dev")
    assert ctx.train == ctx.task.examples("train")  # nothing was redirected
    assert ctx.examples("dev") == ctx.task.examples("dev")


def test_a_method_may_name_no_reasoner(plugins: None, promptopt_run: Any) -> None:
    out = promptopt_run("test-no-reasoning", task="fake/yes-no", steps=2)
    assert len(out.steps) == 2 and out.result["best_prompt"]
    checkpoint = json.loads((out.path / "checkpoint.json").read_text())
    assert "reasoner" not in checkpoint["components"]


def test_asking_for_chains_without_a_reasoner_is_a_one_line_error(
    plugins: None, promptopt_run: Any
) -> None:
    ctx = fake_context()
    ctx.reasoner = None
    with pytest.raises(PromptoptError, match="no reasoner") as caught:
        ctx.chains(ctx.prompt)
    assert "--reasoner" in (caught.value.hint or "")
    with pytest.raises(PromptoptError, match="no reasoner"):
        promptopt_run("test-no-reasoning", task="fake/yes-no", selector="fake-best", steps=1)
    # naming one makes the same run work
    out = promptopt_run(
        "test-no-reasoning", task="fake/yes-no", selector="fake-best", reasoner="chat", steps=1
    )
    assert len(out.steps) == 1
