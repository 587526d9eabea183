"""Measure the embedded model's baselines on BBH tasks, to pick the study's tasks: where the
model is above the majority class, or where the prompt changes its accuracy.

    python docs/results/measure_baselines.py --tasks navigate,web_of_lies --limit 60 \
        --out docs/results/baselines.jsonl

For each task, on the first ``--limit`` test examples (the study's test split): accuracy of the
GReaTer initial prompt, GPO's initial prompt and the empty prompt, through llama.cpp, greedy,
answers read by the task's extractor (the study's evaluation), and the majority class.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("PROMPTOPT_PROGRESS", "0")

REPO = Path(__file__).resolve().parents[2]

GREATER = (
    "Use proper logical reasoning and think step by step. Finally give the actual correct answer."
)
PROMPTS = {
    "greater_initial": (GREATER, None),
    "gpo_initial": ("Let's think step by step.", "\n"),
    "empty": ("", None),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", required=True, help="comma-separated BBH task stems")
    parser.add_argument("--limit", type=int, default=60)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--dev-size", type=int, default=50)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    from promptopt_llamacpp.backend import LlamaCppBackend

    from promptopt.evalcache import EvalCache
    from promptopt.evaluation import evaluate
    from promptopt.registry import get_registry
    from promptopt.types import Prompt

    backend = LlamaCppBackend(None, LlamaCppBackend.Options())
    rows = []
    for stem in args.tasks.split(","):
        cls = get_registry().get("task", f"bbh/{stem}")
        task = cls(cls.Options(data_dir=args.data_dir, dev_size=args.dev_size))  # the study's split
        examples = task.examples("test")[: args.limit]
        counts = Counter(ex.answer for ex in examples)
        row = {"task": stem, "n": len(examples), "majority": max(counts.values()) / len(examples)}
        started = time.perf_counter()
        for name, (text, separator) in PROMPTS.items():
            report = evaluate(
                backend,
                task,
                Prompt(text, separator=separator),
                examples,
                max_new_tokens=args.max_new_tokens,
                split="test",
                cache=EvalCache.default(),
            )
            row[name] = round(report.accuracy, 3)
            row[f"{name}_no_answer"] = sum(o.predicted is None for o in report.outcomes)
        row["seconds"] = round(time.perf_counter() - started, 1)
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.out is not None:
        args.out.write_text("".join(json.dumps(row) + "\n" for row in rows))  # one task a line


if __name__ == "__main__":
    main()
