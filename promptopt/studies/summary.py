"""Turn a study's evaluation into its report data (``report.json``): every run with its
intervals and paired comparison against its initial prompt, per-task spread over seeds,
baselines, pooled per-method figures, and transfer comparisons. Deterministic: the same
evaluation always gives the same report."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from promptopt.studies import stats
from promptopt.studies.plan import StudySettings
from promptopt.studies.results import RunEvaluation, Scored, StudyEvaluation

REPORT_KIND = "promptopt-study-report"
REPORT_VERSION = 1
#: Significance level used to count runs that improved or got worse.
ALPHA = 0.05


def scored_dict(scored: Scored) -> dict[str, Any]:
    """Counts, the accuracy (or mean score) and its bootstrap 95% interval, per-example
    correctness (or scores)."""
    low, high = stats.bootstrap_ci(scored.scores)
    return {**scored.to_dict(), "ci_low": low, "ci_high": high}


def compare(best: Scored, initial: Scored) -> dict[str, Any]:
    """The paired comparison best vs initial on the same examples."""
    return stats.paired_comparison(best.scores, initial.scores).to_dict()


def pooled(items: Iterable[Scored]) -> Scored:
    """Several evaluations as one (scores concatenated in order; the metric of the first, or
    ``mixed`` when they differ)."""
    scores: list[float] = []
    unparsed = 0
    metrics: list[str] = []
    for item in items:
        scores.extend(item.scores)
        unparsed += item.unparsed
        metrics.append(item.metric)
    metric = metrics[0] if len(set(metrics)) == 1 else ("mixed" if metrics else "exact")
    return Scored(tuple(scores), unparsed, None, metric)


def run_entry(run: RunEvaluation) -> dict[str, Any]:
    """One run of the report."""
    return {
        "index": run.index,
        "method": run.method,
        "task": run.task,
        "seed": run.seed,
        "path": run.path,
        "test_set": run.test_set,
        "result": run.result,
        "cost": run.cost.to_dict(),
        "best": scored_dict(run.best),
        "initial": scored_dict(run.initial),
        "vs_initial": compare(run.best, run.initial),
        "transfer": {
            label: {
                "best": scored_dict(best),
                "initial": scored_dict(initial),
                "vs_initial": compare(best, initial),
            }
            for label, (best, initial) in run.transfer.items()
        },
    }


def _cost_total(runs: Sequence[RunEvaluation]) -> dict[str, Any]:
    seconds = [r.cost.seconds for r in runs if r.cost.seconds is not None]
    generated = [r.cost.generated_tokens for r in runs if r.cost.generated_tokens is not None]
    return {
        "seconds": sum(seconds) if seconds else None,
        "generated_tokens": sum(generated) if generated else None,
        "runs_with_cost": len(seconds),
    }


def method_summary(runs: Sequence[RunEvaluation]) -> dict[str, Any]:
    """Runs of one method (on one task, or all tasks): spread over seeds of the accuracies
    (``score`` and ``initial_score`` when some scores are graded) and gains, pooled accuracy and
    paired comparison, counts of significant changes, and how many runs' final prompts passed
    their acceptance rule on dev (``accepted``; the others returned their initial prompt)."""
    comparisons = [stats.paired_comparison(r.best.scores, r.initial.scores) for r in runs]
    best, initial = pooled(r.best for r in runs), pooled(r.initial for r in runs)
    name = "accuracy" if best.binary and initial.binary else "score"
    return {
        "runs": len(runs),
        "seeds": sorted({r.seed for r in runs}),
        "tasks": sorted({r.task for r in runs}),
        name: stats.spread([r.best.mean for r in runs]).to_dict(),
        f"initial_{name}": stats.spread([r.initial.mean for r in runs]).to_dict(),
        "delta": stats.spread([c.delta for c in comparisons]).to_dict(),
        "pooled_best": scored_dict(best),
        "pooled_initial": scored_dict(initial),
        "pooled_vs_initial": compare(best, initial),
        "improved": sum(1 for c in comparisons if c.delta > 0 and c.p_value < ALPHA),
        "worse": sum(1 for c in comparisons if c.delta < 0 and c.p_value < ALPHA),
        "accepted": sum(1 for r in runs if r.result.get("accepted") is True),
        "cost": _cost_total(runs),
    }


def _by(runs: Iterable[RunEvaluation], attribute: str) -> dict[str, list[RunEvaluation]]:
    groups: dict[str, list[RunEvaluation]] = {}
    for run in runs:
        groups.setdefault(str(getattr(run, attribute)), []).append(run)
    return groups


def build_report(evaluation: StudyEvaluation, settings: StudySettings) -> dict[str, Any]:
    """The whole report as JSON-ready data (see the module docstring)."""
    runs = sorted(evaluation.runs, key=lambda r: r.index)
    test_sets = {
        digest: {
            "task": ts.task,
            "n": len(ts.example_ids),
            "max_new_tokens": ts.max_new_tokens,
            "example_ids": list(ts.example_ids),
            "majority_answer": ts.majority_answer,
            "empty": scored_dict(ts.empty),
            "majority": scored_dict(ts.majority),
            "transfer_empty": {k: scored_dict(v) for k, v in ts.transfer_empty.items()},
        }
        for digest, ts in evaluation.test_sets.items()
    }
    tasks: dict[str, Any] = {}
    for task in settings.tasks:
        task_runs = [r for r in runs if r.task == task]
        tasks[task] = {
            "test_sets": sorted({r.test_set for r in task_runs}),
            "methods": {m: method_summary(rs) for m, rs in _by(task_runs, "method").items()},
        }
    sets = evaluation.test_sets.values()
    overall = {
        "methods": {m: method_summary(rs) for m, rs in _by(runs, "method").items()},
        "empty": scored_dict(pooled(ts.empty for ts in sets)),
        "majority": scored_dict(pooled(ts.majority for ts in sets)),
        "test_sets": len(test_sets),
    }
    return {
        "kind": REPORT_KIND,
        "version": REPORT_VERSION,
        "settings": settings.model_dump(),
        "evaluation": {
            "split": "test",
            "backend": evaluation.eval_backend,
            "model": evaluation.eval_model,
            "scoring": evaluation.scoring,
            "transfer": list(evaluation.transfer),
            "bootstrap": {"samples": stats.SAMPLES, "level": stats.LEVEL, "seed": 0},
            "alpha": ALPHA,
        },
        "test_sets": test_sets,
        "runs": [run_entry(r) for r in runs],
        "tasks": tasks,
        "overall": overall,
    }
