"""How much of each run's change on the test split is answer format: per run of a study, the
examples whose verdict flipped between the initial and the optimized prompt, split by whether the
losing side had no parseable answer (a format failure) or a wrong one.

    python docs/results/format_share.py studies/smollm2-bbh \
        > docs/results/smollm2-bbh/format_share.md

Reads ``report.json`` (the runs, their prompts and test sets) and the study's evaluation store
``evals/`` (every example's parsed answer); loads no model.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any


def load_evaluations(root: Path) -> dict[tuple[str, str, str], list[dict[str, Any]]]:
    """Outcomes per (task, prompt text, examples digest) from the study's store."""
    found: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for path in sorted((root / "evals").glob("*/*.json")):
        entry = json.loads(path.read_text())
        key, value = entry["key"], entry["value"]
        found[(key["task"], key["prompt"], key["examples"])] = value["outcomes"]
    return found


GAINED_FORMAT, GAINED_WRONG = "gained: was no answer", "gained: was wrong"
LOST_FORMAT, LOST_WRONG = "lost: now no answer", "lost: now wrong"
COLUMNS = [GAINED_FORMAT, GAINED_WRONG, LOST_FORMAT, LOST_WRONG]


def flips(initial: list[dict[str, Any]], best: list[dict[str, Any]]) -> Counter[str]:
    """Counts of verdict changes, by kind, over examples paired by id."""
    by_id = {o["example_id"]: o for o in initial}
    counts: Counter[str] = Counter()
    for after in best:
        before = by_id[after["example_id"]]
        if before["correct"] == after["correct"]:
            continue
        if after["correct"]:
            counts[GAINED_FORMAT if before["predicted"] is None else GAINED_WRONG] += 1
        else:
            counts[LOST_FORMAT if after["predicted"] is None else LOST_WRONG] += 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", type=Path, help="the study directory (--out of promptopt study)")
    args = parser.parse_args()
    report = json.loads((args.study / "report.json").read_text())
    evaluations = load_evaluations(args.study)
    print("| run | Δ correct | " + " | ".join(COLUMNS) + " | no answer: initial → best |")
    print("|---|---|" + "---|" * len(COLUMNS) + "---|")
    totals: dict[str, Counter[str]] = {}
    for run in report["runs"]:
        digest = run["test_set"]
        initial = evaluations[(run["task"], run["initial"]["prompt"], digest)]
        best = evaluations[(run["task"], run["best"]["prompt"], digest)]
        counts = flips(initial, best)
        totals.setdefault(run["method"], Counter()).update(counts)
        delta = sum(o["correct"] for o in best) - sum(o["correct"] for o in initial)
        unparsed = [sum(o["predicted"] is None for o in side) for side in (initial, best)]
        label = f"{run['method']} {run['task'].removeprefix('bbh/')} seed {run['seed']}"
        no_answer = f"{unparsed[0]} → {unparsed[1]}"
        cells = [f"{delta:+d}", *(str(counts[c]) for c in COLUMNS), no_answer]
        print(f"| {label} | " + " | ".join(cells) + " |")
    print()
    for method, counts in totals.items():
        gained = counts[GAINED_FORMAT] + counts[GAINED_WRONG]
        lost = counts[LOST_FORMAT] + counts[LOST_WRONG]
        fmt = counts[GAINED_FORMAT] - counts[LOST_FORMAT]
        print(
            f"- {method}: {gained} examples gained, {lost} lost; net change from format "
            f"(no answer -> answered, minus the reverse): {fmt:+d} of {gained - lost:+d}"
        )


if __name__ == "__main__":
    main()
