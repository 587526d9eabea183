"""Write a study's ``report.md`` (one table per task, an overall table, transfer tables) and
``report.json`` from the report data of :func:`promptopt.studies.summary.build_report`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from promptopt.studies.cost import Cost, count_text
from promptopt.studies.stats import EXACT_LIMIT, PERMUTATIONS

HEADER = (
    "",
    "seeds",
    "test acc [95% CI]",
    "Δ vs initial [95% CI]",
    "McNemar p (Holm)",
    "Δ vs empty (p Holm)",
    "Δ vs majority (p Holm)",
    "beats all baselines",
    "no answer",
    "cost",
)


def pct(value: float) -> str:
    """``0.625`` -> ``"62.5"`` (percent, one decimal)."""
    return f"{100 * value:.1f}"


def value_of(entry: dict[str, Any]) -> float:
    """An entry's accuracy, or its mean ``score`` under a graded metric."""
    return float(entry["accuracy"] if "accuracy" in entry else entry["score"])


def acc_ci(entry: dict[str, Any]) -> str:
    """``"62.5 [52.0, 72.0]"`` for an entry with accuracy (or mean score) and interval."""
    return f"{pct(value_of(entry))} [{pct(entry['ci_low'])}, {pct(entry['ci_high'])}]"


def value_header(entries: Sequence[dict[str, Any]]) -> str:
    """The column of ``entries``: ``test acc`` when all are accuracies, else ``test score``
    with the metric(s)."""
    if all("accuracy" in e for e in entries):
        return "test acc [95% CI]"
    metrics = sorted({str(e.get("metric", "exact")) for e in entries})
    return f"test score ({', '.join(metrics)}) [95% CI]"


#: How the p column names each test.
TEST_NAMES = {"mcnemar": "McNemar", "permutation": "permutation"}


def p_header(comparisons: Sequence[dict[str, Any]]) -> str:
    """``McNemar p`` (or ``permutation p``) when every comparison used that test, else ``p``
    (and each cell names its test, see :func:`p_cell`)."""
    tests = {c.get("test", "mcnemar") for c in comparisons}
    return f"{TEST_NAMES[tests.pop()]} p" if len(tests) == 1 else "p"


def p_cell(comparison: dict[str, Any], header: str) -> str:
    """The p-value, with its test named when the column mixes tests."""
    text = p_text(comparison["p_value"])
    if header != "p":
        return text
    return f"{text} ({TEST_NAMES[comparison.get('test', 'mcnemar')]})"


def spread_of(summary: dict[str, Any], initial: bool = False) -> dict[str, Any]:
    """A method summary's spread over seeds of the accuracy (or mean score)."""
    prefix = "initial_" if initial else ""
    key = f"{prefix}accuracy" if f"{prefix}accuracy" in summary else f"{prefix}score"
    return dict(summary[key])


def delta_ci(comparison: dict[str, Any]) -> str:
    """``"+5.0 [-2.0, 12.0]"`` (percentage points)."""
    return (
        f"{100 * comparison['delta']:+.1f} "
        f"[{100 * comparison['ci_low']:+.1f}, {100 * comparison['ci_high']:+.1f}]"
    )


def p_text(p: float) -> str:
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def spread_text(spread: dict[str, Any], *, signed: bool = False) -> str:
    """``"62.0 ± 3.1 (58.0–66.0)"`` over seeds (percent or percentage points)."""
    fmt = "{:+.1f}" if signed else "{:.1f}"
    mean, std = fmt.format(100 * spread["mean"]), f"{100 * spread['std']:.1f}"
    low, high = fmt.format(100 * spread["min"]), fmt.format(100 * spread["max"])
    return f"{mean} ± {std} ({low}–{high})"


def cost_text(cost: dict[str, Any]) -> str:
    return Cost.from_dict(cost).short()


def total_cost_text(total: dict[str, Any]) -> str:
    if total.get("seconds") is None:
        return "n/a"
    text = f"{total['seconds']:.0f} s"
    if total.get("generated_tokens") is not None:
        text += f", {count_text(total['generated_tokens'])} gen tok"
    return text


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table (cells must not contain ``|``)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _no_answer(entry: dict[str, Any]) -> str:
    return f"{entry['unparsed']}/{entry['n']}"


def _row(
    label: str,
    seeds: str = "–",
    acc: str = "–",
    delta: str = "–",
    p: str = "–",
    no_answer: str = "–",
    cost: str = "–",
    vs_empty: str = "–",
    vs_majority: str = "–",
    beats: str = "–",
) -> list[str]:
    return [label, seeds, acc, delta, p, vs_empty, vs_majority, beats, no_answer, cost]


def holm_cell(comparison: dict[str, Any], header: str) -> str:
    """``"0.012 (0.036)"``: the p-value and, in brackets, its Holm-adjusted value."""
    text = p_cell(comparison, header)
    if "p_holm" in comparison:
        text += f" ({p_text(comparison['p_holm'])})"
    return text


def short_delta(comparison: dict[str, Any] | None) -> str:
    """``"+5.0 (0.210)"``: Δ in points and its Holm-adjusted p."""
    if comparison is None:
        return "–"
    p = comparison.get("p_holm", comparison["p_value"])
    return f"{100 * comparison['delta']:+.1f} ({p_text(p)})"


def seeds_text(summary: dict[str, Any]) -> str:
    """``"+4.0 [-1.2, +9.2] t; 2/0/0, sign p 0.500"``: mean Δ over seeds with its t interval,
    better / worse / unchanged runs and the sign test."""
    low, high = summary["ci_low"], summary["ci_high"]
    interval = f" [{100 * low:+.1f}, {100 * high:+.1f}] t" if low is not None else ""
    return (
        f"{100 * summary['mean']:+.1f}{interval}; {summary['better']}/{summary['worse']}/"
        f"{summary['unchanged']}, sign p {p_text(summary['sign_p'])}"
    )


def task_header(report: dict[str, Any], task: str) -> tuple[str, ...]:
    """:data:`HEADER`, its value and p columns named for what the task's table shows (graded
    scores, permutation tests)."""
    info = report["tasks"][task]
    runs = [r for r in report["runs"] if r["task"] == task]
    entries = [report["test_sets"][d][k] for d in info["test_sets"] for k in ("majority", "empty")]
    entries += [r[k] for r in runs for k in ("best", "initial")]
    comparisons = [r["vs_initial"] for r in runs]
    p_label = p_header(comparisons)
    return (*HEADER[:2], value_header(entries), HEADER[3], f"{p_label} (Holm)", *HEADER[5:])


def task_rows(report: dict[str, Any], task: str) -> list[list[str]]:
    """Baselines (the training majority, the empty prompt, the user's prompts, each method's
    initial prompt), then per method every run and the mean over seeds."""
    info = report["tasks"][task]
    runs = [r for r in report["runs"] if r["task"] == task]
    several = len(info["test_sets"]) > 1
    p_label = task_header(report, task)[4].removesuffix(" (Holm)")
    rows: list[list[str]] = []
    for number, digest in enumerate(info["test_sets"], start=1):
        ts = report["test_sets"][digest]
        where = f" (test set {number}, n={ts['n']})" if several else ""
        majority, empty = ts["majority"], ts["empty"]
        source = ts.get("majority_source", "test")
        label = f"majority class ({ts['majority_answer']}, {source} labels){where}"
        rows.append(_row(label, acc=acc_ci(majority), cost="no model"))
        rows.append(_row(f"empty prompt{where}", acc=acc_ci(empty), no_answer=_no_answer(empty)))
        for name, entry in ts.get("prompts", {}).items():
            rows.append(_row(f"{name}{where}", acc=acc_ci(entry), no_answer=_no_answer(entry)))
    for method, summary in info["methods"].items():
        mine = [r for r in runs if r["method"] == method]
        initials: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for run in mine:
            initials.setdefault((run["initial"]["prompt"], run["test_set"]), []).append(run)
        for group in initials.values():
            seeds = ",".join(str(r["seed"]) for r in group)
            label = f"initial prompt ({method})" + (f" seeds {seeds}" if len(initials) > 1 else "")
            initial = group[0]["initial"]
            rows.append(
                _row(label, seeds, acc_ci(initial), "reference", no_answer=_no_answer(initial))
            )
        for run in mine:
            comparison = run["vs_initial"]
            vs = run.get("vs", {})
            beats = run.get("beats_baselines")
            rows.append(
                _row(
                    f"{method} seed {run['seed']}",
                    str(run["seed"]),
                    acc_ci(run["best"]),
                    delta_ci(comparison),
                    holm_cell(comparison, p_label),
                    _no_answer(run["best"]),
                    cost_text(run["cost"]),
                    short_delta(vs.get("empty")),
                    short_delta(vs.get("majority")),
                    "–" if beats is None else ("yes" if beats else "no"),
                )
            )
        if summary["runs"] > 1:
            seeds_info = summary.get("over_seeds")
            rows.append(
                _row(
                    f"{method}: mean ± std (min–max) over seeds",
                    ",".join(map(str, summary["seeds"])),
                    spread_text(spread_of(summary)),
                    seeds_text(seeds_info["initial"])
                    if seeds_info
                    else spread_text(summary["delta"], signed=True),
                    cost=total_cost_text(summary["cost"]),
                    vs_empty=seeds_text(seeds_info["empty"]) if seeds_info else "–",
                    vs_majority=seeds_text(seeds_info["majority"]) if seeds_info else "–",
                )
            )
    return rows


OVERALL_HEADER = (
    "",
    "runs",
    "test acc [95% CI]",
    "Δ vs initial [95% CI]",
    "McNemar p",
    "Δ [cluster 95% CI]",
    "runs better / worse / same (sign p)",
    "better / worse / n.s.",
    "no answer",
    "cost (total)",
)


def overall_header(report: dict[str, Any]) -> tuple[str, ...]:
    """:data:`OVERALL_HEADER`, its value and p columns named for what the table shows."""
    overall = report["overall"]
    methods = overall["methods"].values()
    entries = [overall["majority"], overall["empty"]]
    entries += [m[k] for m in methods for k in ("pooled_initial", "pooled_best")]
    comparisons = [m["pooled_vs_initial"] for m in methods]
    head = OVERALL_HEADER
    return (*head[:2], value_header(entries), head[3], p_header(comparisons), *head[5:])


def overall_rows(report: dict[str, Any]) -> list[list[str]]:
    """Baselines pooled over test sets; per method its initial prompt and its optimized
    prompts pooled over runs."""
    overall = report["overall"]
    empty = overall["empty"]
    p_label = overall_header(report)[4]
    dash = ["–", "–"]
    rows = [
        ["majority class", "–", acc_ci(overall["majority"]), "–", "–", *dash, "–", "–", "no model"],
        ["empty prompt", "–", acc_ci(empty), "–", "–", *dash, "–", _no_answer(empty), "–"],
    ]
    for method, summary in overall["methods"].items():
        runs, initial, best = (
            str(summary["runs"]),
            summary["pooled_initial"],
            summary["pooled_best"],
        )
        label = f"initial prompt ({method})"
        no_answer = _no_answer(initial)
        rows.append([label, runs, acc_ci(initial), "reference", "–", *dash, "–", no_answer, "–"])
        comparison = summary["pooled_vs_initial"]
        unchanged = summary["runs"] - summary["improved"] - summary["worse"]
        cluster = summary.get("pooled", {}).get("vs_initial")
        seeds = summary.get("over_seeds", {}).get("initial")
        rows.append(
            [
                method,
                runs,
                acc_ci(best),
                delta_ci(comparison),
                holm_cell(comparison, p_label),
                delta_ci({**cluster, "delta": cluster["mean"]}) if cluster else "–",
                f"{seeds['better']} / {seeds['worse']} / {seeds['unchanged']} "
                f"({p_text(seeds['sign_p'])})"
                if seeds
                else "–",
                f"{summary['improved']} / {summary['worse']} / {unchanged}",
                _no_answer(best),
                total_cost_text(summary["cost"]),
            ]
        )
    return rows


def transfer_rows(report: dict[str, Any], task: str) -> list[list[str]]:
    """The empty prompt, then every run: its optimized prompt on the main evaluation model
    and on each transfer variant."""
    labels = report["evaluation"]["transfer"]
    rows = []
    digests = report["tasks"][task]["test_sets"]
    for number, digest in enumerate(digests, start=1):
        ts = report["test_sets"][digest]
        label = "empty prompt" + (f" (test set {number})" if len(digests) > 1 else "")
        empties = [ts["transfer_empty"].get(name) for name in labels]
        rows.append(
            [label, pct(value_of(ts["empty"]))] + [pct(value_of(e)) if e else "–" for e in empties]
        )
    for run in (r for r in report["runs"] if r["task"] == task):
        cells = [
            f"{run['method']} seed {run['seed']}",
            _transfer_cell(run["best"], run["vs_initial"]),
        ]
        for label in labels:
            entry = run["transfer"].get(label)
            cells.append(_transfer_cell(entry["best"], entry["vs_initial"]) if entry else "–")
        rows.append(cells)
    return rows


def _transfer_cell(best: dict[str, Any], comparison: dict[str, Any]) -> str:
    test = comparison.get("test", "mcnemar")
    named = "" if test == "mcnemar" else f" ({TEST_NAMES[test]})"
    return (
        f"{pct(value_of(best))}, Δ {delta_ci(comparison)}, p {p_text(comparison['p_value'])}{named}"
    )


def is_graded(report: dict[str, Any]) -> bool:
    """True when some score of the study is graded (not 0 or 1): its entries say ``score``."""
    entries = [ts[k] for ts in report["test_sets"].values() for k in ("majority", "empty")]
    entries += [r[k] for r in report["runs"] for k in ("best", "initial")]
    return any("accuracy" not in e for e in entries)


#: What report.md says about graded scores, when the study has some.
GRADED_NOTE = (
    "Graded metrics (`-o task.metric=...`) give each example a score from 0 to 1: their rows "
    "show the mean score in percent, and their p is the paired sign-flip permutation test of "
    "the per-example differences (exact up to {limit} differing examples, else {samples} "
    "seeded random sign patterns), since McNemar's test needs right-or-wrong answers."
)


def code_text(report: dict[str, Any]) -> str:
    """``git abc1234 (uncommitted changes)`` or the installed distributions' versions."""
    version = report.get("code_version") or {}
    git = version.get("git")
    if isinstance(git, dict):
        dirty = " with uncommitted changes" if git.get("dirty") else ""
        return f"git commit {str(git.get('commit'))[:12]}{dirty}"
    dists = version.get("distributions") or {}
    return ", ".join(f"{k} {v}" for k, v in dists.items()) or "unknown"


def scoring_sections(report: dict[str, Any], level: str = "##") -> list[str]:
    """The overall and per-task tables (and transfer tables) of one scoring's report."""
    settings, evaluation = report["settings"], report["evaluation"]
    lines = [
        "",
        f"{level} Overall",
        "",
        "Pooled over every run of a method (all tasks and seeds). *Δ [cluster 95% CI]*: the "
        "mean difference with a cluster bootstrap that resamples test examples together with "
        "all their seeds (seeds share the test rows, so they are not independent evidence). "
        "*Runs better / worse / same*: the sign of each run's Δ, with the exact sign test. "
        f"*Better / worse / n.s.*: runs whose own change is significant at p < "
        f"{evaluation['alpha']}. The p column is the test of the pooled pairs, Holm-adjusted "
        "across methods in brackets.",
        "",
        table(overall_header(report), overall_rows(report)),
    ]
    for task in settings["tasks"]:
        if task not in report["tasks"]:
            continue
        lines += [
            "",
            f"{level} {task}",
            "",
            table(task_header(report, task), task_rows(report, task)),
        ]
        if evaluation["transfer"]:
            lines += [
                "",
                f"Transfer ({task}): test accuracy (or mean score) of the optimized prompt, its Δ "
                "vs the initial prompt [95% CI] and McNemar p (a named test otherwise), on the "
                "main evaluation model and on each "
                "variant (llama.cpp); a gain survives where it stays positive.",
                "",
                table(
                    ("", f"{evaluation['backend']} (main)", *evaluation["transfer"]),
                    transfer_rows(report, task),
                ),
            ]
    return lines


def markdown(report: dict[str, Any]) -> str:
    """The whole ``report.md``."""
    settings, evaluation = report["settings"], report["evaluation"]
    model = evaluation["model"] or "the default model"
    sets = report["test_sets"].values()
    starts = sorted({ts.get("test_from") for ts in sets if ts.get("test_from") is not None})
    rows_text = f" from row {', '.join(map(str, starts))}" if starts else ""
    lines = [
        "# promptopt study",
        "",
        f"Methods {', '.join(settings['methods'])} on {', '.join(settings['tasks'])}, seeds "
        f"{', '.join(map(str, settings['seeds']))}. Held-out evaluation on the **test split** "
        f"only with backend `{evaluation['backend']}` ({model}), scoring `{evaluation['scoring']}`"
        + (f", first {settings['test_limit']} test examples" if settings["test_limit"] else "")
        + f". Code: {code_text(report)}.",
        "",
        f"Every method and seed of a task is tested on the **same test rows**{rows_text} "
        "(after the largest train + dev of any method, unless `--test-from` says otherwise), "
        "never on rows any method trained or selected on. Baselines: the majority class of the "
        "**training** labels, the empty prompt (the bare question), each method's initial "
        "prompt and any `--baseline-prompt`.",
        "",
        "Accuracies in percent with percentile-bootstrap 95% intervals; Δ is the optimized minus "
        "the initial prompt of the same run on the same examples (paired bootstrap interval, "
        "percentage points) and p the exact McNemar test of that pair, Holm-adjusted across the "
        "runs of the table in brackets; *Δ vs empty* and *Δ vs majority* likewise (Holm p). "
        "*Beats all baselines*: better than its initial prompt and every baseline of the task, "
        "each at Holm-adjusted p < 0.05. The mean-over-seeds row gives the mean Δ with a "
        "Student-t interval, runs better/worse/unchanged and the sign test. *No answer*: "
        "outputs without a parseable answer (format failures). Every run of the study is "
        "listed, whether or not it helped.",
        *(
            ["", GRADED_NOTE.format(limit=EXACT_LIMIT, samples=PERMUTATIONS)]
            if is_graded(report)
            else []
        ),
    ]
    lines += scoring_sections(report)
    for name, other in report.get("other_scorings", {}).items():
        view = {**report, **other}
        lines += [
            "",
            f"## Scoring `{name}`",
            "",
            "The same prompts and test rows, answers read by this scoring instead (`logprob`: "
            "the likeliest option, so no format failures; a gap to `generate` is format, not "
            "reasoning).",
        ]
        lines += scoring_sections(view, level="###")
    rescored = [
        *evaluation.get("rescored", []),
        *(
            r
            for o in report.get("other_scorings", {}).values()
            for r in o["evaluation"]["rescored"]
        ),
    ]
    if rescored:
        lines += [
            "",
            "## Re-scored",
            "",
            "The task's parser changed since these outputs were stored; their verdicts were "
            "derived again from the stored outputs with the current parser:",
            "",
            *(f"- {item}" for item in rescored),
        ]
    lines += ["", "## Prompts", ""]
    for run in report["runs"]:
        initial, best = json.dumps(run["initial"]["prompt"]), json.dumps(run["best"]["prompt"])
        lines.append(
            f"- {run['method']} {run['task']} seed {run['seed']} (`{run['path']}`): "
            f"initial {initial} → best {best}"
        )
    for ts in report["test_sets"].values():
        for name, entry in ts.get("prompts", {}).items():
            lines.append(f"- {name} ({ts['task']}): {json.dumps(entry['prompt'])}")
    return "\n".join(lines) + "\n"


def write_reports(report: dict[str, Any], root: Path) -> dict[str, Path]:
    """``report.md`` and ``report.json`` in ``root`` (written atomically)."""
    from promptopt.outputs import write_text
    from promptopt.studies.plan import STUDY_WRITE_HINT

    paths = {"report.md": root / "report.md", "report.json": root / "report.json"}
    write_text(paths["report.md"], markdown(report), hint=STUDY_WRITE_HINT)
    text = json.dumps(report, indent=2, ensure_ascii=False) + "\n"
    write_text(paths["report.json"], text, hint=STUDY_WRITE_HINT)
    return paths
