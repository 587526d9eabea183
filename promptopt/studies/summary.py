"""Turn a study's evaluation into its report data (``report.json``): every run with its
intervals and paired comparisons against its initial prompt and every baseline (Holm-adjusted
across the runs of a table, and whether it beats them all), per task and method the mean
difference over seeds (t interval, sign test) and pooled figures with cluster-bootstrap
intervals (examples resampled with all their seeds), and transfer comparisons. Deterministic:
the same evaluation always gives the same report."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from promptopt.studies import stats
from promptopt.studies.plan import StudySettings
from promptopt.studies.results import HeldOutSet, RunEvaluation, Scored, StudyEvaluation

REPORT_KIND = "promptopt-study-report"
REPORT_VERSION = 2
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


def baselines_of(test_set: HeldOutSet) -> dict[str, Scored]:
    """A task's baselines by name: ``majority`` (training labels), ``empty``, the user's
    ``prompt 1``... and ``initial (<method>)`` of each method."""
    named = {"majority": test_set.majority, "empty": test_set.empty, **test_set.prompts}
    named.update({f"initial ({m})": scored for m, scored in test_set.initials.items()})
    return named


def run_baselines(run: RunEvaluation, test_set: HeldOutSet) -> dict[str, Scored]:
    """What one run is compared with besides its own initial prompt: every baseline of its
    task except its own method's initial prompt (that is ``vs_initial``)."""
    return {
        name: scored
        for name, scored in baselines_of(test_set).items()
        if name != f"initial ({run.method})"
    }


def with_holm(entries: list[dict[str, Any]]) -> None:
    """Add ``p_holm`` (Holm-adjusted across ``entries``) to each comparison in place."""
    for entry, adjusted in zip(entries, stats.holm([e["p_value"] for e in entries]), strict=True):
        entry["p_holm"] = adjusted


def beats_all(entry: dict[str, Any]) -> bool:
    """Whether a run is significantly better (Holm-adjusted) than its initial prompt and every
    baseline of its task."""
    comparisons = [entry["vs_initial"], *entry["vs"].values()]
    return all(c["delta"] > 0 and c["p_holm"] < ALPHA for c in comparisons)


def _clusters(
    runs: Sequence[RunEvaluation], baseline: str | None, sets: dict[str, HeldOutSet]
) -> list[list[float]]:
    """Per (task, example): every run's value there (the best prompt's score, or its difference
    against ``baseline``: ``initial`` for its own initial prompt, else a baseline name)."""
    clusters: dict[tuple[str, int], list[float]] = {}
    for run in runs:
        if baseline is None:
            other: Sequence[float] | None = None
        elif baseline == "initial":
            other = run.initial.scores
        else:
            found = baselines_of(sets[run.test_set]).get(baseline)
            if found is None:
                continue
            other = found.scores
        for i, value in enumerate(run.best.scores):
            diff = value - other[i] if other is not None else value
            clusters.setdefault((run.test_set, i), []).append(diff)
    return list(clusters.values())


def pooled_figures(runs: Sequence[RunEvaluation], sets: dict[str, HeldOutSet]) -> dict[str, Any]:
    """The mean over runs and examples of the best prompt's score and of its difference against
    the initial prompt, the empty prompt and the majority class, each with a cluster-bootstrap
    interval that resamples examples together with all their seeds."""
    out: dict[str, Any] = {}
    for name in (None, "initial", "empty", "majority"):
        clusters = _clusters(runs, name, sets)
        values = [v for c in clusters for v in c]
        if not values:
            continue
        low, high = stats.cluster_bootstrap_ci(clusters)
        out["best" if name is None else f"vs_{name}"] = {
            "mean": sum(values) / len(values),
            "ci_low": low,
            "ci_high": high,
            "examples": len(clusters),
            "values": len(values),
        }
    return out


def over_seeds(runs: Sequence[RunEvaluation], sets: dict[str, HeldOutSet]) -> dict[str, Any]:
    """Per baseline (initial, empty, majority): the runs' paired differences summarized over
    seeds (mean, t interval, better/worse/unchanged and the sign test)."""
    out: dict[str, Any] = {}
    for name in ("initial", "empty", "majority"):
        deltas = []
        for run in runs:
            other = run.initial if name == "initial" else baselines_of(sets[run.test_set])[name]
            deltas.append(run.best.mean - other.mean)
        out[name] = stats.seed_summary(deltas).to_dict()
    return out


def method_summary(
    runs: Sequence[RunEvaluation], sets: dict[str, HeldOutSet] | None = None
) -> dict[str, Any]:
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
        **(
            {"over_seeds": over_seeds(runs, sets), "pooled": pooled_figures(runs, sets)}
            if sets is not None
            else {}
        ),
    }


def _by(runs: Iterable[RunEvaluation], attribute: str) -> dict[str, list[RunEvaluation]]:
    groups: dict[str, list[RunEvaluation]] = {}
    for run in runs:
        groups.setdefault(str(getattr(run, attribute)), []).append(run)
    return groups


def test_set_entry(ts: HeldOutSet) -> dict[str, Any]:
    """One task's test set and its baselines in the report."""
    return {
        "task": ts.task,
        "n": len(ts.example_ids),
        "max_new_tokens": ts.max_new_tokens,
        "test_from": ts.test_from,
        "example_ids": list(ts.example_ids),
        "majority_answer": ts.majority_answer,
        "majority_source": ts.majority_source,
        "majority_from": ts.majority_from,
        "empty": scored_dict(ts.empty),
        "majority": scored_dict(ts.majority),
        "prompts": {k: scored_dict(v) for k, v in ts.prompts.items()},
        "initials": {k: scored_dict(v) for k, v in ts.initials.items()},
        "transfer_empty": {k: scored_dict(v) for k, v in ts.transfer_empty.items()},
    }


def body(evaluation: StudyEvaluation, settings: StudySettings) -> dict[str, Any]:
    """The report of one scoring: test sets, runs, tasks and overall figures."""
    runs = sorted(evaluation.runs, key=lambda r: r.index)
    sets = evaluation.test_sets
    entries = []
    for run in runs:
        entry = run_entry(run)
        ts = sets.get(run.test_set)
        others = run_baselines(run, ts) if ts is not None else {}
        entry["vs"] = {name: compare(run.best, scored) for name, scored in others.items()}
        entries.append(entry)
    for task in settings.tasks:  # Holm across the runs of each task's table, per comparison
        mine = [e for e in entries if e["task"] == task]
        with_holm([e["vs_initial"] for e in mine])
        for name in {n for e in mine for n in e["vs"]}:
            with_holm([e["vs"][name] for e in mine if name in e["vs"]])
    for entry in entries:
        entry["beats_baselines"] = beats_all(entry)
    tasks: dict[str, Any] = {}
    for task in settings.tasks:
        task_runs = [r for r in runs if r.task == task]
        tasks[task] = {
            "test_sets": sorted({r.test_set for r in task_runs}),
            "methods": {m: method_summary(rs, sets) for m, rs in _by(task_runs, "method").items()},
        }
    overall_methods = {m: method_summary(rs, sets) for m, rs in _by(runs, "method").items()}
    pooled_entries = [m["pooled_vs_initial"] for m in overall_methods.values()]
    with_holm(pooled_entries)
    values = sets.values()
    overall = {
        "methods": overall_methods,
        "empty": scored_dict(pooled(ts.empty for ts in values)),
        "majority": scored_dict(pooled(ts.majority for ts in values)),
        "test_sets": len(sets),
    }
    return {
        "evaluation": {
            "split": "test",
            "backend": evaluation.eval_backend,
            "model": evaluation.eval_model,
            "scoring": evaluation.scoring,
            "transfer": list(evaluation.transfer),
            "bootstrap": {"samples": stats.SAMPLES, "level": stats.LEVEL, "seed": 0},
            "alpha": ALPHA,
            "rescored": list(evaluation.rescored),
        },
        "test_sets": {digest: test_set_entry(ts) for digest, ts in sets.items()},
        "runs": entries,
        "tasks": tasks,
        "overall": overall,
    }


def build_report(
    evaluation: StudyEvaluation | dict[str, StudyEvaluation],
    settings: StudySettings,
    record: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The whole report as JSON-ready data: the first scoring's report at the top, every
    further scoring's under ``other_scorings``; ``record`` (code version, invocations) is
    copied in."""
    by_scoring = evaluation if isinstance(evaluation, dict) else {evaluation.scoring: evaluation}
    names = list(by_scoring)
    main = body(by_scoring[names[0]], settings)
    return {
        "kind": REPORT_KIND,
        "version": REPORT_VERSION,
        "settings": settings.model_dump(),
        **(record or {}),
        **main,
        "other_scorings": {name: body(by_scoring[name], settings) for name in names[1:]},
    }
