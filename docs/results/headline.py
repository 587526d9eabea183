"""Print the tables of docs/results/README.md from the files the tools wrote.

    python docs/results/headline.py docs/results/smollm2-bbh-v2/report.json
    python docs/results/headline.py docs/results/pilot/pilot.json     # the task choice

Everything is read from the report the study wrote (nothing is recomputed except sums and
counts over its runs): per method, at the run level, how many runs changed their prompt, how
their test accuracy moved against the initial prompt, the empty prompt and the majority class
(run means; significance per run with Holm's correction across the runs of a task), what the
runs cost; the same under log-probability scoring; and every transfer target.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ALPHA = 0.05


def pct(value: float) -> str:
    return f"{100 * value:.1f}"


def signed(value: float) -> str:
    return f"{100 * value:+.1f}".replace("-", "\u2212")


def interval(entry: dict[str, Any]) -> str:
    return f"[{signed(entry['ci_low'])}, {signed(entry['ci_high'])}]"


def significant(comparison: dict[str, Any]) -> int:
    """+1 / -1 when the Holm-adjusted paired test says better / worse, else 0."""
    if comparison.get("p_holm", comparison["p_value"]) >= ALPHA:
        return 0
    return 1 if comparison["delta"] > 0 else -1


def counts(values: list[int]) -> str:
    return f"{values.count(1)} / {values.count(-1)} / {values.count(0)}"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def run_level(body: dict[str, Any], methods: list[str]) -> str:
    """One row per method: the run-level picture under one scoring."""
    rows = []
    for method in methods:
        runs = [r for r in body["runs"] if r["method"] == method]
        summary = body["overall"]["methods"][method]
        seeds = summary["over_seeds"]
        changed = sum(1 for r in runs if r["best"]["prompt"] != r["initial"]["prompt"])
        rows.append(
            [
                method,
                str(len(runs)),
                str(changed),
                pct(summary["pooled_initial"]["accuracy"]),
                pct(summary["pooled_best"]["accuracy"]),
                f"{signed(seeds['initial']['mean'])} {counts_of(seeds['initial'])}",
                counts([significant(r["vs_initial"]) for r in runs]),
                counts([significant(r["vs"]["empty"]) for r in runs]),
                counts([significant(r["vs"]["majority"]) for r in runs]),
                str(sum(1 for r in runs if r["beats_baselines"])),
            ]
        )
    header = [
        "method",
        "runs",
        "prompt changed",
        "initial acc",
        "final acc",
        "mean Δ (up / down / same)",
        "vs initial: better / worse / n.s.",
        "vs empty",
        "vs majority",
        "beats every baseline",
    ]
    return table(header, rows)


def counts_of(seed_summary: dict[str, Any]) -> str:
    s = seed_summary
    return f"({s['better']} / {s['worse']} / {s['unchanged']}, sign p {s['sign_p']:.2g})"


def baselines(body: dict[str, Any]) -> str:
    """Per task: the majority class (training labels), the empty prompt, the user prompts and
    each method's initial prompt on the shared test set."""
    sets = list(body["test_sets"].values())
    names = ["majority", "empty", *sorted({k for ts in sets for k in ts["prompts"]})]
    initial_names = sorted({k for ts in sets for k in ts["initials"]})
    rows = []
    for ts in sets:
        row = [ts["task"], f"{ts['test_from']}-{ts['test_from'] + ts['n'] - 1}"]
        row += [pct(ts["majority"]["accuracy"]) + f" ({ts['majority_answer']})"]
        row += [pct(ts["empty"]["accuracy"])]
        row += [pct(ts["prompts"][k]["accuracy"]) for k in names[2:]]
        row += [pct(ts["initials"][m]["accuracy"]) for m in initial_names]
        rows.append(row)
    header = ["task", "test rows", "majority (train labels)", "empty prompt", *names[2:]]
    header += [f"initial ({m})" for m in initial_names]
    return table(header, rows)


def transfer(body: dict[str, Any], methods: list[str]) -> str:
    """Per method and target: mean Δ vs the initial prompt over runs, and significant runs."""
    labels = body["evaluation"]["transfer"]
    rows = []
    for method in methods:
        runs = [r for r in body["runs"] if r["method"] == method]
        main = [r["best"]["accuracy"] - r["initial"]["accuracy"] for r in runs]
        marks = counts([significant(r["vs_initial"]) for r in runs])
        row = [method, f"{signed(sum(main) / len(main))} ({marks})"]
        for label in labels:
            entries = [r["transfer"][label] for r in runs if label in r["transfer"]]
            deltas = [e["best"]["accuracy"] - e["initial"]["accuracy"] for e in entries]
            marks = counts([significant(e["vs_initial"]) for e in entries])
            row.append(f"{signed(sum(deltas) / len(deltas))} ({marks})" if deltas else "–")
        rows.append(row)
    empties = ["empty prompt", "–"]
    for label in labels:
        values = [ts["transfer_empty"][label]["accuracy"] for ts in body["test_sets"].values()]
        empties.append(pct(sum(values) / len(values)))
    header = ["method", "main: mean Δ (better / worse / n.s.)", *labels]
    return table(header, [*rows, empties])


def compute(body: dict[str, Any], methods: list[str]) -> str:
    rows = []
    for method in methods:
        runs = [r for r in body["runs"] if r["method"] == method]
        seconds = [r["cost"]["seconds"] for r in runs if r["cost"]["seconds"] is not None]
        tokens = [r["cost"]["generated_tokens"] or 0 for r in runs]
        rows.append(
            [
                method,
                str(len(runs)),
                f"{sum(seconds) / max(len(seconds), 1):.0f}",
                f"{sum(seconds) / 60:.1f}",
                f"{sum(tokens) / max(len(runs), 1) / 1000:.1f}k",
            ]
        )
    header = ["method", "runs", "seconds per run", "minutes, all runs", "generated tokens per run"]
    return table(header, rows)


def pilot_choice(pilot: dict[str, Any]) -> str:
    """Per candidate task, the dev accuracies the pilot measured and their spread (max minus
    min over the empty prompt, the user prompts and the methods' initial prompts), largest
    spread first: the four at the top are the study's tasks."""
    rows = []
    for task, by_scoring in pilot["tasks"].items():
        measured = by_scoring["generate"]["rows"]
        prompts = {k: v["accuracy"] for k, v in measured.items() if not k.startswith("majority")}
        majority = next(v["accuracy"] for k, v in measured.items() if k.startswith("majority"))
        initials = [v for k, v in prompts.items() if k.startswith("initial")]
        spread = max(prompts.values()) - min(prompts.values())
        row = [task, str(by_scoring["generate"]["n"]), pct(majority), pct(prompts["empty prompt"])]
        row += [pct(v) for k, v in prompts.items() if k.startswith("prompt ")]
        row += [f"{pct(min(initials))}-{pct(max(initials))}", pct(spread)]
        rows.append((spread, row))
    rows.sort(key=lambda item: -item[0])
    users = [
        k
        for k in next(iter(pilot["tasks"].values()))["generate"]["rows"]
        if k.startswith("prompt ")
    ]
    header = ["task", "dev rows", "majority (train labels)", "empty prompt", *users]
    header += ["initial prompts (min-max)", "spread"]
    return table(header, [row for _, row in rows])


def main(path: str) -> None:
    data = json.loads(Path(path).read_text())
    if data.get("split") == "dev" and "tasks" in data and "runs" not in data:
        print(pilot_choice(data))
        return
    report = data
    methods = list(report["settings"]["methods"])
    scorings = [report["evaluation"]["scoring"], *report["other_scorings"]]
    bodies = {scorings[0]: report, **report["other_scorings"]}
    for scoring in scorings:
        print(f"### Run level, {scoring} scoring\n")
        print(run_level(bodies[scoring], methods) + "\n")
    print("### Baselines on the shared test sets (generate scoring)\n")
    print(baselines(report) + "\n")
    if report["evaluation"]["transfer"]:
        print("### Transfer (generate scoring): mean Δ vs each run's initial prompt\n")
        print(transfer(report, methods) + "\n")
    print("### Compute of the runs (their own records)\n")
    print(compute(report, methods))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/results/smollm2-bbh-v2/report.json")
