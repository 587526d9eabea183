"""The optimization loop: reason, propose, score, select, checkpoint; resumable at every step."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any

import pluggy

from promptopt.assembly import Components
from promptopt.components import StepContext
from promptopt.errors import PromptoptError
from promptopt.progress import Progress
from promptopt.records import RunInfo, StepRecord
from promptopt.rundir import RunDir
from promptopt.types import Prompt


@dataclass
class LoopState:
    """What a checkpoint holds: the next step to run, the current prompt and component states."""

    step: int
    prompt: Prompt
    initial_prompt: Prompt
    stopped: bool = False
    stop_reason: str = ""

    def to_dict(self, components: Components) -> dict[str, Any]:
        return {
            "step": self.step,
            "prompt": self.prompt.to_dict(),
            "initial_prompt": self.initial_prompt.to_dict(),
            "stopped": self.stopped,
            "stop_reason": self.stop_reason,
            "components": {k: c.state_dict() for k, c in components.stateful().items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], components: Components) -> LoopState:
        for kind, component in components.stateful().items():
            component.load_state_dict(data.get("components", {}).get(kind, {}))
        return cls(
            step=int(data["step"]),
            prompt=Prompt.from_dict(data["prompt"]),
            initial_prompt=Prompt.from_dict(data["initial_prompt"]),
            stopped=bool(data.get("stopped", False)),
            stop_reason=str(data.get("stop_reason", "")),
        )


def step_rng(seed: int, step: int) -> random.Random:
    """The random generator of one step: the same for a fresh and a resumed run."""
    return random.Random(f"promptopt:{seed}:{step}")


def make_context(
    components: Components, step: int, seed: int, progress: Progress, run: RunDir | None
) -> StepContext:
    task = components.task
    return StepContext(
        step=step,
        task=task,
        backend=components.backend,
        reasoner=components.reasoner,
        loss_extractor=components.loss_extractor,
        train=task.examples("train"),
        rng=step_rng(seed, step),
        progress=progress,
        run_dir=run.path if run else None,
    )


def run_step(ctx: StepContext, components: Components, prompt: Prompt) -> StepRecord:
    """One step over the four interfaces; returns its record (``chosen_prompt`` is the new one)."""
    timings = ctx.timings
    started = time.perf_counter()
    chains = components.reasoner.reason(ctx, [prompt], ctx.train)[0]
    timings["reasoning"] = timings.get("reasoning", 0.0) + time.perf_counter() - started
    candidates = components.proposer.propose(ctx, prompt, chains)
    scores = components.loss_extractor.score_candidates(ctx, prompt, candidates, chains)
    selection = components.selector.select(ctx, prompt, candidates, scores)
    timings["step"] = time.perf_counter() - started
    ctx.info["selection"] = selection
    return StepRecord(
        step=ctx.step,
        position=prompt.position,
        prompt_before=prompt.text,
        candidates=[c.label for c in candidates],
        scores=[float(s) for s in scores],
        evaluated=[
            {"prompt": e.prompt.text, "loss": e.loss, "error_rate": e.error_rate, **e.details}
            for e in selection.evaluated
        ],
        chosen_prompt=selection.prompt.text,
        loss=selection.loss,
        stop=selection.stop,
        reason=selection.reason,
        timings={k: round(v, 4) for k, v in timings.items()},
    )


def optimize(
    components: Components,
    run: RunDir,
    hooks: pluggy.PluginManager,
    info: RunInfo,
    *,
    seed: int,
    progress: Progress,
) -> dict[str, Any]:
    """Run (or resume) the loop until the method's step budget or an early stop, then finalize.

    A checkpoint is written after every step, so an interruption loses at most the step in flight.
    """
    method = components.method
    checkpoint = run.read_checkpoint()
    if checkpoint is not None:
        try:
            state = LoopState.from_dict(checkpoint, components)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise PromptoptError(
                f"checkpoint in {str(run.path)!r} is malformed ({type(exc).__name__}: {exc})",
                hint="restore the file promptopt wrote, or start a new run",
            ) from exc
        run.truncate_steps(state.step)
        run.logger.info("resuming at step %d with prompt %r", state.step, state.prompt.text)
    else:
        initial = method.initial_prompt(components.task, components.backend)
        state = LoopState(step=0, prompt=initial, initial_prompt=initial)
        run.logger.info("starting with prompt %r", initial.text)
    hooks.hook.run_start(run=info)

    with progress.bar(total=method.steps, desc="steps", unit="step", initial=state.step) as bar:
        while state.step < method.steps and not state.stopped:
            ctx = make_context(components, state.step, seed, progress, run)
            record = run_step(ctx, components, state.prompt)
            selection = ctx.info["selection"]
            state = LoopState(
                step=state.step + 1,
                prompt=selection.prompt,
                initial_prompt=state.initial_prompt,
                stopped=selection.stop,
                stop_reason=selection.reason if selection.stop else "",
            )
            run.append_step(record)
            run.write_checkpoint(state.to_dict(components))
            run.logger.info(
                "step %d: loss=%s prompt=%r (%.1fs)",
                record.step,
                record.loss,
                record.chosen_prompt,
                record.timings.get("step", 0.0),
            )
            bar.update(1)
            bar.set_postfix_str(f"loss={record.loss}")
            hooks.hook.step_end(run=info, record=record)

    ctx = make_context(components, state.step, seed, progress, run)
    final = method.finalize(ctx, state.initial_prompt, components.selector)
    steps = run.read_steps()
    result: dict[str, Any] = {
        "method": method.name,
        "task": components.task.name,
        "backend": components.backend.name,
        "model": components.backend.model_id,
        "seed": seed,
        "initial_prompt": state.initial_prompt.text,
        "final_step_prompt": state.prompt.text,
        "steps_run": state.step,
        "stopped_early": state.stopped,
        "stop_reason": state.stop_reason,
        "losses": [r["loss"] for r in steps],
        **final,
    }
    run.write_result(result)
    run.plot_losses()
    run.logger.info("best prompt: %r", result.get("best_prompt"))
    hooks.hook.run_end(run=info, result=result)
    return result
