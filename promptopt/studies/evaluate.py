"""Held-out evaluation of a study's runs on the test split only.

Each finished run is evaluated on its own test split (built with the run's task options, the
first ``--test-limit`` examples): its best prompt and its initial prompt; each distinct test set
also gets the empty prompt (the bare question) and the majority class (no model). Evaluation
goes through :func:`promptopt.evaluation.evaluate` with the shared evaluation cache, and every
result is also kept in the study's own store ``DIR/evals`` keyed by everything that determines
it, so a rerun of a finished study loads no model at all.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from promptopt.components import Backend, Task
from promptopt.errors import PromptoptError
from promptopt.studies.cost import read_cost
from promptopt.studies.plan import RunSpec, StudySettings
from promptopt.studies.results import HeldOutSet, RunEvaluation, Scored, StudyEvaluation
from promptopt.studies.runner import StudyLog
from promptopt.studies.targets import Target, result_options
from promptopt.types import Example, Prompt

STORE = "evals"
ANSWER_MAX_TOKENS = 12
#: How the empty prompt is shown (part of every store key, so a change is a new entry).
EMPTY_PROMPT_LAYOUT = "bare question"


def run_plan(config: dict[str, Any]) -> Any:
    """The resolved plan of a run from its ``config.json``: the same routing, method defaults
    and split options its components were built with."""
    from promptopt.assembly import plan_run
    from promptopt.config import make_run_config
    from promptopt.registry import get_registry

    return plan_run(make_run_config(config, {}), get_registry())


def eval_max_new_tokens(settings: StudySettings, plan: Any) -> int:
    """``--eval-max-new-tokens``, else the run's reasoning length (``plan.reasoning_tokens()``:
    its reasoner's ``max_new_tokens``), else 512."""
    if settings.eval_max_new_tokens is not None:
        return settings.eval_max_new_tokens
    value = plan.reasoning_tokens()
    return value if value is not None else 512


def majority(task: Task, examples: Sequence[Example]) -> tuple[str, Scored]:
    """The most common gold answer of ``examples`` (ties: the smallest) and its scores when
    answered to every example, under the task's metric."""
    from promptopt.metrics import task_score

    counts = Counter(ex.answer for ex in examples)
    answer = min(counts, key=lambda a: (-counts[a], a))
    scores = tuple(task_score(task, answer, answer, ex) for ex in examples)
    return answer, Scored(scores, 0, None, task.metric_name)


def _digest(parts: Sequence[str]) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:16]


@dataclass
class _Context:
    task: Task
    examples: list[Example]
    digest: str
    max_new_tokens: int


class StudyEvaluator:
    """Evaluates a study's finished runs, loading each model only on a store miss; counts the
    model work it did (``computed``, ``models_loaded``, ``generated_tokens``)."""

    def __init__(
        self, root: Path, settings: StudySettings, log: StudyLog, *, progress: bool
    ) -> None:
        from promptopt.evalcache import EvalCache

        self.root, self.settings, self.log, self.progress = root, settings, log, progress
        self.store = EvalCache(root / STORE)
        self.cache = EvalCache.default()
        self.computed = self.from_store = self.models_loaded = self.generated_tokens = 0
        self._backend: tuple[str, Backend] | None = None
        self._tasks: dict[str, Task] = {}

    # ------------------------------------------------------------------ the study

    def evaluate(self, specs: Sequence[RunSpec], targets: Sequence[Target]) -> StudyEvaluation:
        """Evaluate every finished run of ``specs`` on ``targets[0]`` (the main evaluation
        model), then on each transfer target."""
        from promptopt.rundir import RunDir

        main = targets[0]
        runs: list[RunEvaluation] = []
        sets: dict[str, HeldOutSet] = {}
        contexts: dict[str, _Context] = {}
        try:
            for spec in specs:
                run_dir = RunDir(spec.path)
                config, result = run_dir.read_config(), run_dir.read_result() or {}
                for key in ("best_prompt", "initial_prompt"):
                    if not isinstance(result.get(key), str):
                        raise PromptoptError(
                            f"{str(spec.path / 'result.json')!r} has no {key!r}",
                            hint="restore the file the run wrote, or delete it and rerun",
                        )
                ctx = self._context(config)
                contexts.setdefault(ctx.digest, ctx)
                if ctx.digest not in sets:
                    sets[ctx.digest] = self._test_set(ctx, main)
                label = spec.label
                sep = result.get("prompt_separator")  # how the method joins prompt and question
                best = self._score(main, ctx, result["best_prompt"], f"{label}: best prompt", sep)
                initial = self._score(main, ctx, result["initial_prompt"], f"{label}: initial", sep)
                runs.append(
                    RunEvaluation(
                        index=spec.index,
                        method=spec.method,
                        task=spec.task,
                        seed=spec.seed,
                        path=str(spec.path.relative_to(self.root)),
                        test_set=ctx.digest,
                        best=best,
                        initial=initial,
                        cost=read_cost(spec.path, result),
                        result=_result_summary(result),
                    )
                )
            for target in targets[1:]:
                self._transfer(target, runs, sets, contexts)
        finally:
            self.close()
        return StudyEvaluation(
            runs=runs,
            test_sets=sets,
            eval_backend=main.backend,
            eval_model=main.locate(),
            scoring=self.settings.scoring,
            transfer=[t.label for t in targets[1:]],
        )

    def _transfer(
        self,
        target: Target,
        runs: list[RunEvaluation],
        sets: dict[str, HeldOutSet],
        contexts: dict[str, _Context],
    ) -> None:
        for i, run in enumerate(runs):
            ctx = contexts[run.test_set]
            what = f"{run.method} {run.task} seed {run.seed} on {target.label}"
            sep = run.result.get("prompt_separator")
            best = self._score(target, ctx, run.best.prompt or "", f"{what}: best prompt", sep)
            initial = self._score(target, ctx, run.initial.prompt or "", f"{what}: initial", sep)
            runs[i] = _with_transfer(run, target.label, best, initial)
        for digest, test_set in sets.items():
            empty = self._score(target, contexts[digest], "", f"{test_set.task} on {target.label}")
            test_set.transfer_empty[target.label] = empty

    # ------------------------------------------------------------------ pieces

    def _context(self, config: dict[str, Any]) -> _Context:
        """The run's task (bare-question variant) and its test examples (``--test-limit``)."""
        from promptopt.evalcache import canonical_json

        plan = run_plan(config)
        task_cls, options = plan.task_cls, plan.options["task"]
        key = canonical_json([task_cls.name, task_cls.identity(), options.model_dump(mode="json")])
        if key not in self._tasks:
            task = task_cls(options)
            assert isinstance(task, Task)
            self._tasks[key] = task
        task = self._tasks[key]
        examples = task.examples("test")
        if self.settings.test_limit is not None:
            examples = examples[: self.settings.test_limit]
        digest = _digest(
            [task.name, *(f"{ex.id}\x1e{ex.question}\x1e{ex.answer}" for ex in examples)]
        )
        tokens = eval_max_new_tokens(self.settings, plan)
        return _Context(task, examples, f"{digest}-{tokens}", tokens)

    def _test_set(self, ctx: _Context, main: Target) -> HeldOutSet:
        answer, scored = majority(ctx.task, ctx.examples)
        empty = self._score(main, ctx, "", f"{ctx.task.name}: empty prompt")
        return HeldOutSet(
            id=ctx.digest,
            task=ctx.task.name,
            example_ids=tuple(ex.id for ex in ctx.examples),
            max_new_tokens=ctx.max_new_tokens,
            majority_answer=answer,
            empty=empty,
            majority=scored,
        )

    def _key(
        self, target: Target, ctx: _Context, prompt: str, separator: str | None = None
    ) -> dict[str, Any]:
        layout = {"separator": separator} if separator is not None else {}
        identity = type(ctx.task).identity()  # a data file's hash: an edited file is a new key
        return {
            **layout,
            **({"task_identity": identity} if identity else {}),
            "target": target.identity,
            "backend_options": result_options(target.backend, target.options),
            "task": ctx.task.name,
            "examples": ctx.digest,
            "n": len(ctx.examples),
            "prompt": prompt,
            "empty_prompt": EMPTY_PROMPT_LAYOUT,
            "scoring": self.settings.scoring,
            "max_new_tokens": ctx.max_new_tokens,
            "answer_max_tokens": ANSWER_MAX_TOKENS,
        }

    def _score(
        self, target: Target, ctx: _Context, prompt: str, what: str, separator: str | None = None
    ) -> Scored:
        """``prompt`` (joined to each question with ``separator``, None: the task's layout) on
        the context's examples: from the study store, else evaluated."""
        from dataclasses import asdict

        from promptopt.evaluation import evaluate
        from promptopt.progress import Progress

        key = self._key(target, ctx, prompt, separator)
        stored = self.store.get(key)
        if stored is not None and not _covers(stored, ctx.examples):
            self.log(f"the study store's entry for {what} is damaged; evaluating it again")
            stored = None
        if stored is None:
            backend = self._load(target)
            self.log(f"evaluating {what} ({target.backend}, {len(ctx.examples)} test examples)")
            before = backend.usage.snapshot()
            report = evaluate(
                backend,
                ctx.task,
                Prompt(text=prompt, separator=separator),
                ctx.examples,
                scoring=self.settings.scoring,
                max_new_tokens=ctx.max_new_tokens,
                answer_max_tokens=ANSWER_MAX_TOKENS,
                split="test",
                progress=Progress(enabled=None if self.progress else False),
                cache=self.cache,
            )
            used = backend.usage.since(before)
            self.generated_tokens += used.generated_tokens
            self.computed += 1
            stored = {
                "model_id": backend.model_id,
                "score": report.score,
                "cache_hits": report.cache_hits,
                "usage": used.to_dict(),
                "outcomes": [asdict(o) for o in report.outcomes],
            }
            self.store.put(key, stored)
        else:
            self.from_store += 1
        from promptopt.evaluation import judge

        by_id = {o["example_id"]: o for o in stored["outcomes"]}
        # the store keeps the model's outputs; verdicts come from the task's current code
        ordered = [
            judge(ctx.task, ex, o["reasoning"], o["answer_text"], o.get("option_logprobs"))
            for ex, o in ((ex, by_id[ex.id]) for ex in ctx.examples)
        ]
        return Scored(
            tuple(o.score for o in ordered),
            sum(1 for o in ordered if o.predicted is None),
            prompt,
            ctx.task.metric_name,
        )

    def _load(self, target: Target) -> Backend:
        """The target's backend, loaded on first need; the previous model is closed first."""
        from promptopt.assembly import build_options
        from promptopt.registry import get_registry

        if self._backend is not None and self._backend[0] == target.label:
            return self._backend[1]
        self.close()
        cls = get_registry().get("backend", target.backend)
        assert issubclass(cls, Backend)
        model = target.locate()
        self.log(f"loading {target.backend} model {model or '(default)'} for evaluation")
        backend = cls(model, build_options(cls, target.options))
        self.models_loaded += 1
        self._backend = (target.label, backend)
        return backend

    def close(self) -> None:
        """Release the loaded evaluation model, if any."""
        if self._backend is not None:
            self._backend[1].close()
            self._backend = None


def _covers(stored: dict[str, Any], examples: Sequence[Example]) -> bool:
    """Whether a store entry holds a well-formed outcome for every example (a hand-edited or
    foreign entry is evaluated again rather than ending the study in a traceback)."""
    outcomes = stored.get("outcomes")
    if not isinstance(outcomes, list):
        return False
    fields = ("example_id", "reasoning", "answer_text")
    ids = {
        o["example_id"]
        for o in outcomes
        if isinstance(o, dict)
        and all(k in o for k in fields)
        and isinstance(o["reasoning"], str)
        and isinstance(o["answer_text"], str)
    }
    return all(ex.id in ids for ex in examples)


def _with_transfer(run: RunEvaluation, label: str, best: Scored, initial: Scored) -> RunEvaluation:
    from dataclasses import replace

    return replace(run, transfer={**run.transfer, label: (best, initial)})


def _result_summary(result: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "best_prompt",
        "initial_prompt",
        "steps_run",
        "stopped_early",
        "dev_accuracy_initial",
        "dev_accuracy_final",
        "dev_size",
        "accepted",
        "accept_rule",
        "accept_dev_difference",
        "accept_p_value",
        "candidate_prompt",
        "model",
        "backend",
        "prompt_separator",
    )
    return {key: result[key] for key in keys if key in result}
