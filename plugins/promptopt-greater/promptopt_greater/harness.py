"""Drive the four ``greater`` components without the CLI: build them from one flat option dict
and run steps exactly as promptopt's loop does (used by the benchmark and the tests)."""

from __future__ import annotations

import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from promptopt.components import Backend, Component, StepContext, Task
from promptopt.progress import Progress
from promptopt.types import Candidate, Prompt, Selection
from promptopt_greater.loss import GreaterLossExtractor
from promptopt_greater.proposer import GreaterProposer
from promptopt_greater.reasoner import GreaterReasoner
from promptopt_greater.selector import GreaterSelector


def options_for(cls: type[Component], values: Mapping[str, Any]) -> Any:
    """``cls.Options`` from the keys of the flat dict ``values`` it declares."""
    fields = cls.Options.model_fields
    return cls.Options(**{k: v for k, v in values.items() if k in fields})


@dataclass
class GreaterComponents:
    """The reasoner, proposer, loss extractor and selector of one run."""

    reasoner: GreaterReasoner
    proposer: GreaterProposer
    loss_extractor: GreaterLossExtractor
    selector: GreaterSelector

    @classmethod
    def build(cls, options: Mapping[str, Any] | None = None) -> GreaterComponents:
        values = dict(options or {})
        return cls(
            reasoner=GreaterReasoner(options_for(GreaterReasoner, values)),
            proposer=GreaterProposer(options_for(GreaterProposer, values)),
            loss_extractor=GreaterLossExtractor(options_for(GreaterLossExtractor, values)),
            selector=GreaterSelector(options_for(GreaterSelector, values)),
        )

    def state_dict(self) -> dict[str, Any]:
        return {
            "reasoner": self.reasoner.state_dict(),
            "proposer": self.proposer.state_dict(),
            "loss_extractor": self.loss_extractor.state_dict(),
            "selector": self.selector.state_dict(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.reasoner.load_state_dict(state["reasoner"])
        self.proposer.load_state_dict(state["proposer"])
        self.loss_extractor.load_state_dict(state["loss_extractor"])
        self.selector.load_state_dict(state["selector"])


@dataclass
class StepResult:
    """What one step did, with its phase timings (seconds)."""

    selection: Selection
    candidates: list[Candidate]
    scores: list[float]
    timings: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


def step_context(
    step: int,
    task: Task,
    backend: Backend,
    components: GreaterComponents,
    *,
    seed: int = 0,
    train: Sequence[Any] | None = None,
) -> StepContext:
    """A step context like the loop's: ``rng`` seeded from (seed, step)."""
    return StepContext(
        step=step,
        task=task,
        backend=backend,
        reasoner=components.reasoner,
        loss_extractor=components.loss_extractor,
        train=list(train) if train is not None else task.examples("train"),
        rng=random.Random(f"promptopt:{seed}:{step}"),
        progress=Progress(enabled=False),
    )


def run_step(ctx: StepContext, components: GreaterComponents, prompt: Prompt) -> StepResult:
    """Reason, propose, score and select once, timing each phase as the loop does."""
    started = time.perf_counter()
    chains = components.reasoner.reason(ctx, [prompt], ctx.train)[0]
    ctx.timings["reasoning"] = ctx.timings.get("reasoning", 0.0) + time.perf_counter() - started
    candidates = components.proposer.propose(ctx, prompt, chains)
    scores = components.loss_extractor.score_candidates(ctx, prompt, candidates, chains)
    selection = components.selector.select(ctx, prompt, candidates, scores)
    ctx.timings["step"] = time.perf_counter() - started
    return StepResult(selection, list(candidates), list(scores), dict(ctx.timings), dict(ctx.info))


def run_steps(
    task: Task,
    backend: Backend,
    components: GreaterComponents,
    prompt: Prompt,
    steps: int,
    *,
    seed: int = 0,
    start: int = 0,
) -> tuple[Prompt, list[StepResult]]:
    """``steps`` steps from ``prompt`` (stopping early when the selector says so)."""
    results = []
    for step in range(start, start + steps):
        ctx = step_context(step, task, backend, components, seed=seed)
        result = run_step(ctx, components, prompt)
        results.append(result)
        prompt = result.selection.prompt
        if result.selection.stop:
            break
    return prompt, results
