"""Held-out evaluation of a study's runs on each task's shared test set only.

Every run of a task is evaluated on the same rows (:mod:`promptopt.studies.testsets`): its best
prompt and its initial prompt; each task also gets the empty prompt (the bare question), the
user's ``--baseline-prompt`` prompts and the majority class of the training labels (no model),
under every ``--scoring``. Evaluation goes through :func:`promptopt.evaluation.evaluate` with the
shared evaluation cache, and every result is also kept in the study's own store ``DIR/evals``
keyed by everything that determines the model's outputs, with the task's parser version: a
rerun loads no model, and a parser change re-scores the stored outputs and says so.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from promptopt.components import Backend, Task
from promptopt.errors import PromptoptError
from promptopt.studies.cost import read_cost
from promptopt.studies.plan import RunSpec, StudySettings
from promptopt.studies.results import HeldOutSet, RunEvaluation, Scored, StudyEvaluation
from promptopt.studies.runner import StudyLog
from promptopt.studies.targets import Target, result_options
from promptopt.studies.testsets import TaskData, majority_answer, study_task_data
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


def majority(task: Task, train: Sequence[Example], test: Sequence[Example]) -> tuple[str, Scored]:
    """The most common gold answer of the training rows ``train`` (ties: the smallest) and its
    scores when answered to every ``test`` example, under the task's metric."""
    from promptopt.metrics import task_score

    answer = majority_answer(train)
    scores = tuple(task_score(task, answer, answer, ex) for ex in test)
    return answer, Scored(scores, 0, None, task.metric_name)


def parser_version(task: Task) -> str:
    """The version of a task's parse and score code: its ``parser_version`` attribute when it
    declares one, else a hash of the source of its classes (and of its answer format), so a
    changed parser is noticed when stored outputs are judged again."""
    declared = getattr(task, "parser_version", None)
    if isinstance(declared, str | int):
        return str(declared)
    parts = [task.metric_name]
    classes = [c for c in type(task).__mro__ if c.__module__ not in ("builtins", "abc", "typing")]
    answers = getattr(task, "answers", None)
    if answers is not None:
        classes.append(type(answers))
    for cls in classes:
        try:
            parts.append(inspect.getsource(cls))
        except (OSError, TypeError):
            parts.append(f"{cls.__module__}.{cls.__qualname__}")
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:12]


class StudyEvaluator:
    """Evaluates a study's finished runs, loading each model only on a store miss; counts the
    model work it did (``computed``, ``models_loaded``, ``generated_tokens``). With
    ``store_only`` (an export) a missing evaluation is an error instead of model work."""

    def __init__(
        self,
        root: Path,
        settings: StudySettings,
        log: StudyLog,
        *,
        progress: bool,
        data: dict[str, TaskData] | None = None,
        store_only: bool = False,
    ) -> None:
        from promptopt.evalcache import EvalCache

        self.root, self.settings, self.log, self.progress = root, settings, log, progress
        self.store = EvalCache(root / STORE)
        self.cache = EvalCache.default()
        self.computed = self.from_store = self.models_loaded = self.generated_tokens = 0
        self._backend: tuple[str, Backend] | None = None
        #: what the HTML report's example browser shows: test-set id -> its examples, and
        #: test-set id -> (prompt, separator) -> outcomes on the main evaluation model
        self.examples: dict[str, list[Example]] = {}
        self.outcomes: dict[str, dict[tuple[str, str | None], list[Any]]] = {}
        self._main: str | None = None
        self.data = data
        self.store_only = store_only
        #: store keys used by this evaluator (an export copies these entries)
        self.used: list[dict[str, Any]] = []
        #: evaluations re-scored under a changed parser (``what: old -> new``)
        self.rescored: list[str] = []
        self._versions: dict[str, str] = {}

    # ------------------------------------------------------------------ the study

    def evaluate(
        self, specs: Sequence[RunSpec], targets: Sequence[Target]
    ) -> dict[str, StudyEvaluation]:
        """Every finished run of ``specs`` and every task baseline on each task's shared test
        set, under every scoring of the study: on ``targets[0]`` (the main evaluation model),
        then on each transfer target."""
        data = self.data if self.data is not None else study_task_data(self.settings)
        self.data = data
        try:
            return {
                scoring: self._evaluate(scoring, specs, targets, data)
                for scoring in self.settings.scorings
            }
        finally:
            self.close()

    def _evaluate(
        self,
        scoring: str,
        specs: Sequence[RunSpec],
        targets: Sequence[Target],
        data: dict[str, TaskData],
    ) -> StudyEvaluation:
        from promptopt.rundir import RunDir
        from promptopt.studies.export import read_json_maybe_gz

        main = targets[0]
        self._main = main.label
        runs: list[RunEvaluation] = []
        first_rescored = len(self.rescored)
        tag = "" if len(self.settings.scorings) == 1 else f" [{scoring}]"
        for spec in specs:
            result = (
                RunDir(spec.path).read_result()
                if (spec.path / "result.json").is_file()
                else read_json_maybe_gz(spec.path / "result.json")  # an export's runs
            ) or {}
            for key in ("best_prompt", "initial_prompt"):
                if not isinstance(result.get(key), str):
                    raise PromptoptError(
                        f"{str(spec.path / 'result.json')!r} has no {key!r}",
                        hint="restore the file the run wrote, or delete it and rerun",
                    )
            ctx = data[spec.task]
            label = spec.label + tag
            sep = result.get("prompt_separator")  # how the method joins prompt and question
            best = self._score(main, ctx, scoring, result["best_prompt"], f"{label}: best", sep)
            initial = self._score(
                main, ctx, scoring, result["initial_prompt"], f"{label}: initial", sep
            )
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
        sets: dict[str, HeldOutSet] = {}
        for name in dict.fromkeys(spec.task for spec in specs):
            sets[data[name].digest] = self._baselines(main, data[name], scoring, runs, tag)
        for target in targets[1:]:
            self._transfer(target, scoring, runs, sets, data, tag)
        return StudyEvaluation(
            runs=runs,
            test_sets=sets,
            eval_backend=main.backend,
            eval_model=main.locate(),
            scoring=scoring,
            transfer=[t.label for t in targets[1:]],
            rescored=self.rescored[first_rescored:],
        )

    def _baselines(
        self, main: Target, ctx: TaskData, scoring: str, runs: list[RunEvaluation], tag: str
    ) -> HeldOutSet:
        """A task's test set with its baselines: training-label majority, empty prompt, the
        user's prompts and each method's initial prompt."""
        answer, majority_scored = majority(ctx.task, ctx.train, ctx.test)
        empty = self._score(main, ctx, scoring, "", f"{ctx.name}{tag}: empty prompt")
        prompts = {
            f"prompt {i}": self._score(main, ctx, scoring, text, f"{ctx.name}{tag}: prompt {i}")
            for i, text in enumerate(self.settings.baseline_prompts, start=1)
        }
        initials: dict[str, Scored] = {}
        for run in runs:
            if run.task == ctx.name:
                initials.setdefault(run.method, run.initial)
        return HeldOutSet(
            id=ctx.digest,
            task=ctx.name,
            example_ids=tuple(ex.id for ex in ctx.test),
            max_new_tokens=ctx.max_new_tokens,
            majority_answer=answer,
            empty=empty,
            majority=majority_scored,
            prompts=prompts,
            initials=initials,
            majority_source="train",
            majority_from=len(ctx.train),
            test_from=ctx.test_from,
        )

    def _transfer(
        self,
        target: Target,
        scoring: str,
        runs: list[RunEvaluation],
        sets: dict[str, HeldOutSet],
        data: dict[str, TaskData],
        tag: str,
    ) -> None:
        for i, run in enumerate(runs):
            ctx = data[run.task]
            what = f"{run.method} {run.task} seed {run.seed} on {target.label}{tag}"
            sep = run.result.get("prompt_separator")
            best = self._score(target, ctx, scoring, run.best.prompt or "", f"{what}: best", sep)
            initial = self._score(
                target, ctx, scoring, run.initial.prompt or "", f"{what}: initial", sep
            )
            runs[i] = _with_transfer(run, target.label, best, initial)
        for test_set in sets.values():
            ctx = data[test_set.task]
            what = f"{test_set.task} on {target.label}{tag}"
            test_set.transfer_empty[target.label] = self._score(target, ctx, scoring, "", what)

    # ------------------------------------------------------------------ pieces

    def _key(
        self,
        target: Target,
        ctx: TaskData,
        scoring: str,
        prompt: str,
        separator: str | None = None,
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
            "n": len(ctx.test),
            "prompt": prompt,
            "empty_prompt": EMPTY_PROMPT_LAYOUT,
            "scoring": scoring,
            "max_new_tokens": ctx.max_new_tokens,
            "answer_max_tokens": ANSWER_MAX_TOKENS,
        }

    def _score(
        self,
        target: Target,
        ctx: TaskData,
        scoring: str,
        prompt: str,
        what: str,
        separator: str | None = None,
    ) -> Scored:
        """``prompt`` (joined to each question with ``separator``, None: the task's layout) on
        the task's test rows: from the study store, else evaluated."""
        from dataclasses import asdict

        from promptopt.evaluation import evaluate, is_scoring, judge
        from promptopt.progress import Progress

        key = self._key(target, ctx, scoring, prompt, separator)
        self.used.append(key)
        version = self._versions.setdefault(ctx.name, parser_version(ctx.task))
        stored = self.store.get(key)
        if stored is not None and not _covers(stored, ctx.test):
            self.log(f"the study store's entry for {what} is damaged; evaluating it again")
            stored = None
        if stored is None:
            if self.store_only:
                raise PromptoptError(
                    f"the export in {str(self.root)!r} holds no evaluation of {what}",
                    hint="export the study again with `promptopt study --out DIR --export "
                    "NEW`, or rerun the original study",
                )
            assert is_scoring(scoring)
            backend = self._load(target)
            self.log(f"evaluating {what} ({target.backend}, {len(ctx.test)} test examples)")
            before = backend.usage.snapshot()
            report = evaluate(
                backend,
                ctx.task,
                Prompt(text=prompt, separator=separator),
                ctx.test,
                scoring=scoring,
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
                "parser_version": version,
                "outcomes": [asdict(o) for o in report.outcomes],
            }
            self.store.put(key, stored)
        else:
            self.from_store += 1
            old = stored.get("parser_version")
            if old != version:
                self.rescored.append(f"{what}: parser {old or '(unrecorded)'} -> {version}")
                self.log(f"re-scored {what}: the task's parser changed ({old} -> {version})")
                self.store.put(key, {**stored, "parser_version": version})
        by_id = {o["example_id"]: o for o in stored["outcomes"]}
        # the store keeps the model's outputs; verdicts come from the task's current code
        ordered = [
            judge(ctx.task, ex, o["reasoning"], o["answer_text"], o.get("option_logprobs"))
            for ex, o in ((ex, by_id[ex.id]) for ex in ctx.test)
        ]
        if target.label == self._main and scoring == self.settings.scorings[0]:
            self.examples[ctx.digest] = list(ctx.test)
            self.outcomes.setdefault(ctx.digest, {})[(prompt, separator)] = ordered
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
