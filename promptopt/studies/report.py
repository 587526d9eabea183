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
    "McNemar p",
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
) -> list[str]:
    return [label, seeds, acc, delta, p, no_answer, cost]


def task_header(report: dict[str, Any], task: str) -> tuple[str, ...]:
    """:data:`HEADER`, its value and p columns named for what the task's table shows (graded
    scores, permutation tests)."""
    info = report["tasks"][task]
    runs = [r for r in report["runs"] if r["task"] == task]
    entries = [report["test_sets"][d][k] for d in info["test_sets"] for k in ("majority", "empty")]
    entries += [r[k] for r in runs for k in ("best", "initial")]
    comparisons = [r["vs_initial"] for r in runs]
    return (*HEADER[:2], value_header(entries), HEADER[3], p_header(comparisons), *HEADER[5:])


def task_rows(report: dict[str, Any], task: str) -> list[list[str]]:
    """Baselines, then per method its initial prompt, every run and the mean over seeds."""
    info = report["tasks"][task]
    runs = [r for r in report["runs"] if r["task"] == task]
    several = len(info["test_sets"]) > 1
    p_label = task_header(report, task)[4]
    rows: list[list[str]] = []
    for number, digest in enumerate(info["test_sets"], start=1):
        ts = report["test_sets"][digest]
        where = f" (test set {number}, n={ts['n']})" if several else ""
        majority, empty = ts["majority"], ts["empty"]
        label = f"majority class ({ts['majority_answer']}){where}"
        rows.append(_row(label, acc=acc_ci(majority), cost="no model"))
        rows.append(_row(f"empty prompt{where}", acc=acc_ci(empty), no_answer=_no_answer(empty)))
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
            rows.append(
                _row(
                    f"{method} seed {run['seed']}",
                    str(run["seed"]),
                    acc_ci(run["best"]),
                    delta_ci(comparison),
                    p_cell(comparison, p_label),
                    _no_answer(run["best"]),
                    cost_text(run["cost"]),
                )
            )
        if summary["runs"] > 1:
            rows.append(
                _row(
                    f"{method}: mean ± std (min–max) over seeds",
                    ",".join(map(str, summary["seeds"])),
                    spread_text(spread_of(summary)),
                    spread_text(summary["delta"], signed=True),
                    cost=total_cost_text(summary["cost"]),
                )
            )
    return rows


OVERALL_HEADER = (
    "",
    "runs",
    "test acc [95% CI]",
    "Δ vs initial [95% CI]",
    "McNemar p",
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
    rows = [
        ["majority class", "–", acc_ci(overall["majority"]), "–", "–", "–", "–", "no model"],
        ["empty prompt", "–", acc_ci(empty), "–", "–", "–", _no_answer(empty), "–"],
    ]
    for method, summary in overall["methods"].items():
        runs, initial, best = (
            str(summary["runs"]),
            summary["pooled_initial"],
            summary["pooled_best"],
        )
        label = f"initial prompt ({method})"
        no_answer = _no_answer(initial)
        rows.append([label, runs, acc_ci(initial), "reference", "–", "–", no_answer, "–"])
        comparison = summary["pooled_vs_initial"]
        unchanged = summary["runs"] - summary["improved"] - summary["worse"]
        rows.append(
            [
                method,
                runs,
                acc_ci(best),
                delta_ci(comparison),
                p_cell(comparison, p_label),
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


def markdown(report: dict[str, Any]) -> str:
    """The whole ``report.md``."""
    settings, evaluation = report["settings"], report["evaluation"]
    model = evaluation["model"] or "the default model"
    lines = [
        "# promptopt study",
        "",
        f"Methods {', '.join(settings['methods'])} on {', '.join(settings['tasks'])}, seeds "
        f"{', '.join(map(str, settings['seeds']))}. Held-out evaluation on the **test split** "
        f"only with backend `{evaluation['backend']}` ({model}), scoring `{evaluation['scoring']}`"
        + (f", first {settings['test_limit']} test examples" if settings["test_limit"] else "")
        + ".",
        "",
        "Accuracies in percent with percentile-bootstrap 95% intervals; Δ is the optimized minus "
        "the initial prompt of the same run on the same examples (paired bootstrap interval, "
        "percentage points) and p the exact McNemar test of that pair. *No answer*: outputs "
        "without a parseable answer (format failures). Every run of the study is listed, "
        "whether or not it helped.",
        *(
            ["", GRADED_NOTE.format(limit=EXACT_LIMIT, samples=PERMUTATIONS)]
            if is_graded(report)
            else []
        ),
        "",
        "## Overall",
        "",
        "Pooled over every run of a method (all tasks and seeds). Seeds reuse the same test "
        "examples, so pooled intervals and p-values understate the variation between seeds; "
        "see the per-task spread. *Better / worse / n.s.*: runs whose change is significant "
        f"at p < {evaluation['alpha']}.",
        "",
        table(overall_header(report), overall_rows(report)),
    ]
    for task in settings["tasks"]:
        lines += ["", f"## {task}", "", table(task_header(report, task), task_rows(report, task))]
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
    lines += ["", "## Prompts", ""]
    for run in report["runs"]:
        initial, best = json.dumps(run["initial"]["prompt"]), json.dumps(run["best"]["prompt"])
        lines.append(
            f"- {run['method']} {run['task']} seed {run['seed']} (`{run['path']}`): "
            f"initial {initial} → best {best}"
        )
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
