"""The optimization loop, the one every method, test and benchmark drives: propose, score and
select over the current population, record, checkpoint; resumable at every step."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pluggy

from promptopt.acceptance import accept_final
from promptopt.accounting import Usage, cuda_peak_mb, peak_rss_mb
from promptopt.assembly import Components
from promptopt.context import StepContext, step_rng
from promptopt.errors import PromptoptError
from promptopt.history import History
from promptopt.progress import Progress
from promptopt.records import RunInfo, StepRecord, StepReport
from promptopt.rundir import RunDir
from promptopt.types import Candidate, Prompt, Selection

#: Layout version of checkpoint.json; another version is refused, never half-read.
#: 3: the components' step reports (``reports``).
CHECKPOINT_FORMAT = 3


@dataclass
class LoopState:
    """What a checkpoint holds: the next step, the current population, the initial prompts,
    the scored history, what the components reported in every finished step and (in the file)
    every stateful component's state."""

    step: int
    population: tuple[Prompt, ...]
    initial: tuple[Prompt, ...]
    history: History = field(default_factory=History)
    stopped: bool = False
    stop_reason: str = ""
    #: One report per finished step, led by the method's ``start`` (step -1, fresh runs).
    reports: tuple[StepReport, ...] = ()

    @property
    def prompt(self) -> Prompt:
        """The lead prompt."""
        return self.population[0]

    def to_dict(self, components: Components) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "step": self.step,
            "population": [p.to_dict() for p in self.population],
            "initial": [p.to_dict() for p in self.initial],
            "history": self.history.to_dict(),
            "stopped": self.stopped,
            "stop_reason": self.stop_reason,
            "reports": [report.to_dict() for report in self.reports],
            "components": {k: c.state_dict() for k, c in components.stateful().items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], components: Components) -> LoopState:
        check_checkpoint_format(data)
        for kind, component in components.stateful().items():
            component.load_state_dict(data["components"][kind])
        return cls(
            step=int(data["step"]),
            population=tuple(Prompt.from_dict(p) for p in data["population"]),
            initial=tuple(Prompt.from_dict(p) for p in data["initial"]),
            history=History.from_dict(data["history"]),
            stopped=bool(data["stopped"]),
            stop_reason=str(data["stop_reason"]),
            reports=tuple(StepReport.from_dict(r) for r in data["reports"]),
        )


def check_checkpoint_format(data: dict[str, Any]) -> None:
    """A one-line error for a checkpoint of another layout (another promptopt version, or a
    damaged file), before any model loads."""
    if data.get("format") != CHECKPOINT_FORMAT:
        raise PromptoptError(
            f"the checkpoint has format {data.get('format')!r}, not {CHECKPOINT_FORMAT}: it is "
            "malformed or from another promptopt version",
            hint="resume it with the promptopt version that wrote it, or start a new run",
        )


@dataclass(frozen=True)
class StepOutcome:
    """What one step produced: its record (for ``steps.jsonl``), the selection and what the
    components reported (kept in the loop state)."""

    record: StepRecord
    selection: Selection
    report: StepReport


def make_context(
    components: Components,
    state: LoopState,
    *,
    seed: int,
    progress: Progress,
    run: RunDir | None = None,
) -> StepContext:
    """The context of step ``state.step``."""
    task = components.task
    return StepContext(
        step=state.step,
        task=task,
        backend=components.backend,
        reasoner=components.reasoner,
        loss_extractor=components.loss_extractor,
        train=task.examples("train"),
        rng=step_rng(seed, state.step),
        progress=progress,
        steps=components.method.steps,
        history=state.history,
        population=state.population,
        optimizer=components.optimizer,
        seed=seed,
        run_dir=run.path if run else None,
        reports=state.reports,
    )


def run_step(ctx: StepContext, components: Components) -> StepOutcome:
    """One step: every member of the population proposes and scores candidates, then the
    selector chooses the next population."""
    started = time.perf_counter()
    candidates: list[Candidate] = []
    scores: list[float] = []
    for parent, member in enumerate(ctx.population):
        with ctx.timed("proposal"):
            proposed = components.proposer.propose(ctx, member)
        with ctx.timed("scoring"):
            member_scores = components.loss_extractor.score_candidates(ctx, member, proposed)
        if len(member_scores) != len(proposed):
            raise PromptoptError(
                f"loss extractor {components.loss_extractor.name!r} returned "
                f"{len(member_scores)} scores for {len(proposed)} candidates",
                hint="score_candidates must return one score per candidate",
            )
        candidates += [dataclasses.replace(c, meta={**c.meta, "parent": parent}) for c in proposed]
        scores += [float(s) for s in member_scores]
    lead = ctx.population[0]
    with ctx.timed("selection"):
        selection = components.selector.select(ctx, lead, candidates, scores)
    ctx.timings["step"] = time.perf_counter() - started
    report = StepReport.of(ctx.step, ctx.notes)
    record = StepRecord(
        step=ctx.step,
        position=lead.position,
        prompt_before=lead.text,
        candidates=[c.label for c in candidates],
        scores=scores,
        evaluated=[
            {"prompt": e.prompt.text, "loss": e.loss, "error_rate": e.error_rate, **e.details}
            for e in selection.evaluated
        ],
        chosen_prompt=selection.prompt.text,
        loss=selection.loss,
        stop=selection.stop,
        reason=selection.reason,
        timings={k: round(v, 4) for k, v in ctx.timings.items()},
        notes=dict(report.notes),
        population=[p.text for p in ctx.population] if len(ctx.population) > 1 else [],
    )
    return StepOutcome(record, selection, report)


class _Meter:
    """Per-role usage deltas and peak memory around a piece of work."""

    def __init__(self, components: Components) -> None:
        self.backends = components.backends()
        self.before = {role: b.usage.snapshot() for role, b in self.backends.items()}

    def compute(self) -> dict[str, Any]:
        models = {
            role: b.usage.since(self.before[role]).to_dict() for role, b in self.backends.items()
        }
        return {
            "models": models,
            "peak_rss_mb": round(peak_rss_mb(), 1),
            "cuda_peak_mb": cuda_peak_mb(),
        }


def _start(
    components: Components,
    run: RunDir,
    seed: int,
    progress: Progress,
    initial: Sequence[Prompt] | None,
) -> tuple[LoopState, float]:
    """The state to continue from (checkpoint), or a fresh one with the method's pre-step
    evaluations; and the seconds those took (0 on resume)."""
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
        return state, 0.0
    run.truncate_steps(0)  # lines of a step that never reached its checkpoint
    method = components.method
    if initial is None:
        initial = method.initial_population(components.task, components.backend)
    population = tuple(initial)
    state = LoopState(step=0, population=population, initial=population)
    started = time.perf_counter()
    ctx = make_context(components, state, seed=seed, progress=progress, run=run)
    state.history.record(method.start(ctx), step=-1)
    state.reports = (StepReport.of(-1, ctx.notes),)
    run.logger.info("starting with prompt %r", state.prompt.text)
    return state, time.perf_counter() - started


def _prepare(components: Components, run: RunDir) -> None:
    """Let components set up what needs the loaded model; record what they resolved (where
    generation runs, threads...) in config.json and the log."""
    runtime = {"threads": _thread_facts()}
    for kind, component in components.stateful().items():
        facts = component.prepare(components.backend)
        if facts:
            runtime[kind] = facts
    run.record_runtime(runtime)
    for key, facts in runtime.items():
        run.logger.info("runtime %s: %s", key, facts)


def _thread_facts() -> dict[str, Any]:
    """CPU threads of the libraries this process uses (set explicitly by the backends)."""
    import os
    import sys

    facts: dict[str, Any] = {"cpus": os.cpu_count()}
    torch = sys.modules.get("torch")
    if torch is not None:
        facts["torch"] = torch.get_num_threads()
    return facts


def _advance(state: LoopState, outcome: StepOutcome) -> LoopState:
    selection = outcome.selection
    state.history.record(selection.evaluated, step=state.step)
    state.history.mark_picked(selection.prompt, state.step)
    return LoopState(
        step=state.step + 1,
        population=selection.next_population,
        initial=state.initial,
        history=state.history,
        stopped=selection.stop,
        stop_reason=selection.reason if selection.stop else "",
        reports=(*state.reports, outcome.report),
    )


def optimize(
    components: Components,
    run: RunDir,
    hooks: pluggy.PluginManager,
    info: RunInfo,
    *,
    seed: int,
    progress: Progress,
    initial: Sequence[Prompt] | None = None,
    notify: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run (or resume) the loop until the method's step budget or an early stop, then finalize.
    ``initial``: the starting population when the caller already built (and so validated) it;
    ``notify``: where the line saying that the initial prompt was kept goes besides the run's
    log (stderr, for ``promptopt run``; None: only the log).

    A checkpoint is written after every step, so an interruption loses at most the step in flight.
    """
    method = components.method
    meter = _Meter(components)  # the first step's usage includes the method's start
    _prepare(components, run)
    state, start_seconds = _start(components, run, seed, progress, initial)
    hooks.hook.run_start(run=info)
    with progress.bar(total=method.steps, desc="steps", unit="step", initial=state.step) as bar:
        while state.step < method.steps and not state.stopped:
            ctx = make_context(components, state, seed=seed, progress=progress, run=run)
            if start_seconds:
                ctx.timings["start"], start_seconds = start_seconds, 0.0
            start = state.reports[-1] if state.step == 0 and state.reports else None
            if start is not None and start.notes:  # the method's start, with step 0
                ctx.note("start", dict(start.notes))
            outcome = run_step(ctx, components)
            record = dataclasses.replace(outcome.record, compute=meter.compute())
            meter = _Meter(components)
            state = _advance(state, outcome)
            run.append_step(record)
            run.write_checkpoint(state.to_dict(components))
            run.logger.info(
                "step %d: loss=%s prompt=%r (%.1fs)%s",
                record.step,
                record.loss,
                record.chosen_prompt,
                record.timings.get("step", 0.0),
                f"; stopping: {record.reason}" if record.stop else "",
            )
            bar.update(1)
            bar.set_postfix_str(f"loss={record.loss}")
            hooks.hook.step_end(run=info, record=record)
    return _finish(components, run, hooks, info, state, seed=seed, progress=progress, notify=notify)


def _finish(
    components: Components,
    run: RunDir,
    hooks: pluggy.PluginManager,
    info: RunInfo,
    state: LoopState,
    *,
    seed: int,
    progress: Progress,
    notify: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    method = components.method
    meter = _Meter(components)
    started = time.perf_counter()
    ctx = make_context(components, state, seed=seed, progress=progress, run=run)
    final = method.finalize(ctx, state.initial[0], components.selector)
    # do no harm: the method's choice replaces the initial prompt only when the rule passes it
    final = accept_final(ctx, method.options.accept, state.initial[0], final, run.logger, notify)
    finalize_compute = meter.compute()
    finalize_compute["seconds"] = time.perf_counter() - started
    steps = run.read_steps()
    result: dict[str, Any] = {
        "method": method.name,
        "task": components.task.name,
        "backend": components.backend.name,
        "model": components.backend.model_id,
        "seed": seed,
        "initial_prompt": state.initial[0].text,
        # how the method's prompts join each question (None: the task's layout), for evaluation
        "prompt_separator": state.initial[0].separator,
        "final_step_prompt": state.prompt.text,
        "steps_run": state.step,
        "stopped_early": state.stopped,
        "stop_reason": state.stop_reason,
        "losses": [r["loss"] for r in steps],
        **final,
        "compute": compute_totals(steps, finalize_compute),
    }
    if components.optimizer is not None:
        result["optimizer_model"] = components.optimizer.model_id
    if state.stopped:
        run.logger.info("stopped early after step %d: %s", state.step - 1, state.stop_reason)
    run.plot_losses()  # before result.json: a failed write leaves the run resumable
    run.write_result(result)
    run.logger.info("best prompt: %r", result.get("best_prompt"))
    hooks.hook.run_end(run=info, result=result)
    return result


def compute_totals(steps: list[dict[str, Any]], finalize: dict[str, Any]) -> dict[str, Any]:
    """Whole-run cost from the step records (so resumed runs count every process) plus the
    final choice: seconds, seconds per phase, usage per model role, peak memory."""
    phases: dict[str, float] = {}
    models: dict[str, Usage] = {}
    peaks: list[float] = [finalize.get("peak_rss_mb") or 0.0]
    cuda: list[float] = [finalize["cuda_peak_mb"]] if finalize.get("cuda_peak_mb") else []
    chunks = [*(r.get("compute") or {} for r in steps), finalize]
    for r in steps:
        for phase, seconds in r.get("timings", {}).items():
            if phase != "step":
                phases[phase] = phases.get(phase, 0.0) + float(seconds)
    for chunk in chunks:
        for role, usage in (chunk.get("models") or {}).items():
            models.setdefault(role, Usage()).add(Usage.from_dict(usage))
        peaks.append(float(chunk.get("peak_rss_mb") or 0.0))
        if chunk.get("cuda_peak_mb"):
            cuda.append(float(chunk["cuda_peak_mb"]))
    phases["finalize"] = float(finalize.get("seconds", 0.0))
    timed = [r.get("timings", {}) for r in steps]
    seconds = sum(float(t.get("step", 0.0)) + float(t.get("start", 0.0)) for t in timed)
    seconds += phases["finalize"]
    return {
        "seconds": round(seconds, 3),
        "phases": {k: round(v, 3) for k, v in phases.items()},
        "models": {role: usage.to_dict() for role, usage in models.items()},
        "peak_rss_mb": max(peaks),
        "cuda_peak_mb": max(cuda) if cuda else None,
    }
