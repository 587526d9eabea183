"""A beam-search selector written as a third-party plugin author would, against the documented
contract: the loop carries a population, every member proposes, the selector returns the next
population, and a run with it resumes exactly."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from promptopt import hookimpl
from promptopt.components import ComponentOptions, Selector, StepContext
from promptopt.testing.contracts import check_selector
from promptopt.testing.fakes import next_position
from promptopt.types import Candidate, Prompt, Selection


class BeamSelector(Selector):
    """Keeps the ``beam_width`` best candidates (exact loss) of all members as the next
    population; the lead is the best."""

    name = "test-beam"
    description = "beam search over the population (test plugin)"

    class Options(ComponentOptions):
        beam_width: int = 2

    def select(
        self,
        ctx: StepContext,
        prompt: Prompt,
        candidates: Sequence[Candidate],
        scores: Sequence[float],
    ) -> Selection:
        order = sorted(range(len(candidates)), key=lambda i: (scores[i], i))
        shortlist = [candidates[i].prompt for i in order[: 2 * self.options.beam_width]]  # type: ignore[attr-defined]
        evaluated = ctx.loss_extractor.evaluate(ctx, shortlist)
        ranked = sorted(evaluated, key=lambda e: e.loss)
        unique: list[Prompt] = []
        for entry in ranked:
            if entry.prompt.text not in {p.text for p in unique}:
                unique.append(entry.prompt)
        beam = tuple(next_position(p) for p in unique[: self.options.beam_width])  # type: ignore[attr-defined]
        return Selection(beam[0], ranked[0].loss, evaluated=tuple(evaluated), population=beam)


class BeamPlugin:
    @hookimpl
    def register_selectors(self, register: Callable[[type[Selector]], None]) -> None:
        register(BeamSelector)


def test_a_beam_selector_keeps_the_contract() -> None:
    check_selector(BeamSelector)
    check_selector(BeamSelector, options={"beam_width": 3})


def test_the_loop_carries_a_population(
    promptopt_fakes: Any, promptopt_register: Callable[..., Any], promptopt_run: Any
) -> None:
    promptopt_register(BeamPlugin(), name="test-beam")
    outcome = promptopt_run("fake", task="fake/yes-no", selector="test-beam", steps=3, seed=5)
    first, second = outcome.steps[0], outcome.steps[1]
    assert first["population"] == []  # one initial prompt
    assert len(second["population"]) == 2  # the beam the first step chose
    assert second["population"][0] == first["chosen_prompt"]
    # both members proposed: each proposes the current word plus fake_candidates others
    assert len(second["candidates"]) == 2 * len(first["candidates"])
    best_losses = sorted(e["loss"] for e in first["evaluated"])
    assert first["loss"] == best_losses[0]


def test_a_population_run_resumes_exactly(
    promptopt_fakes: Any, promptopt_register: Callable[..., Any], promptopt_run: Any
) -> None:
    promptopt_register(BeamPlugin(), name="test-beam")
    settings = {"task": "fake/yes-no", "selector": "test-beam", "steps": 4, "seed": 2}
    straight = promptopt_run("fake", **settings)
    stopped = promptopt_run("fake", **settings, interrupt_after=2)
    resumed = promptopt_run.resume(stopped.path)
    assert [s["population"] for s in resumed.steps] == [s["population"] for s in straight.steps]
    assert [s["chosen_prompt"] for s in resumed.steps] == [
        s["chosen_prompt"] for s in straight.steps
    ]
    assert resumed.result["best_prompt"] == straight.result["best_prompt"]
