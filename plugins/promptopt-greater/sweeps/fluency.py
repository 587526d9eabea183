"""The fluency sweep behind the ``greater-small`` preset: GReaTer on a small model with the exact
check over the task's valid answers (``option_ce``, ``option_error``) at a few exact-check
fluency weights (``eval_fluency_weight``), one BBH task, one seed, short settings. Each run is a
plain ``promptopt run greater``; the JSON written holds the settings, each run's final prompt,
its perplexity and the initial prompt's (under the task model), the dev accuracy over the valid
answers, and the training loss per step, so the README's table can be derived again.

    flock-free:  python plugins/promptopt-greater/sweeps/fluency.py --data-dir DATA
    shared CPUs: ... --lock /tmp/promptopt-cpu.lock   (each run waits for the lock)
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

#: The sweep's grid and settings (short: a few minutes per run on 2 CPU cores).
LOSSES = ("option_ce", "option_error")
WEIGHTS = (0.02, 0.2, 1.0)
SETTINGS: dict[str, Any] = {
    "task": "bbh/navigate",
    "model": None,  # the default task model (the embedded SmolLM2-135M)
    "seed": 0,
    "steps": 12,
    "train_size": 8,
    "dev_size": 24,
    "max_new_tokens": 48,
}


def run_one(args: argparse.Namespace, loss: str, weight: float) -> dict[str, Any]:
    """One ``promptopt run greater`` with ``exact_loss=loss`` and ``eval_fluency_weight=weight``;
    its outcome, read from the run directory."""
    out = Path(args.runs) / f"{loss}-w{weight}"
    shutil.rmtree(out, ignore_errors=True)  # a fresh run, never a resumed one
    s = SETTINGS
    command = [
        sys.executable, "-m", "promptopt", "run", "greater", "--task", s["task"],
        "--seed", str(s["seed"]), "--out", str(out),
        "-o", f"loss_extractor.exact_loss={loss}",
        "-o", f"loss_extractor.eval_fluency_weight={weight}",
        "-o", f"steps={s['steps']}", "-o", f"train_size={s['train_size']}",
        "-o", f"dev_size={s['dev_size']}", "-o", f"max_new_tokens={s['max_new_tokens']}",
    ]  # fmt: skip
    if args.data_dir:
        command += ["--data-dir", args.data_dir]
    if s["model"]:
        command += ["--model", s["model"]]
    if args.lock:
        command = ["flock", args.lock, *command]
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    result = json.loads((out / "result.json").read_text())
    steps = [json.loads(line) for line in (out / "steps.jsonl").read_text().splitlines()]
    chosen = []
    for record in steps:
        match = next(e for e in record["evaluated"] if e["prompt"] == record["chosen_prompt"])
        chosen.append(
            {
                "loss": match["loss"],
                "option_error_rate": match["error_rate"],
                "vocab_error_rate": match["vocab_error_rate"],
                "option_ce": match["option_ce"],
                "prompt_nll": match["prompt_nll"],
            }
        )
    shortlist_rates = [e["error_rate"] for r in steps for e in r["evaluated"]]
    return {
        "exact_loss": loss,
        "eval_fluency_weight": weight,
        "best_prompt": result["best_prompt"],
        "best_prompt_perplexity": result["best_prompt_perplexity"],
        "initial_prompt_perplexity": result["initial_prompt_perplexity"],
        "dev_accuracy_initial": result.get("dev_accuracy_initial"),
        "dev_accuracy_final": result.get("dev_accuracy_final"),
        "train_option_ce_first": chosen[0]["option_ce"],
        "train_option_ce_best": min(c["option_ce"] for c in chosen),
        "shortlist_error_rates_not_1": sum(r < 1.0 for r in shortlist_rates),
        "shortlist_evaluations": len(shortlist_rates),
        "steps": chosen,
        "seconds": seconds,
    }


def table(rows: list[dict[str, Any]]) -> str:
    """The README's table (markdown)."""
    lines = [
        "| exact_loss | eval_fluency_weight | dev acc. initial -> final | perplexity initial -> "
        "final | train option CE step 0 -> best | final prompt |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['exact_loss']} | {r['eval_fluency_weight']} | "
            f"{r['dev_accuracy_initial']:.3f} -> {r['dev_accuracy_final']:.3f} | "
            f"{r['initial_prompt_perplexity']:.1f} -> {r['best_prompt_perplexity']:.1f} | "
            f"{r['train_option_ce_first']:.3f} -> {r['train_option_ce_best']:.3f} | "
            f"{r['best_prompt']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="promptopt --data-dir")
    parser.add_argument("--runs", default="/tmp/greater-fluency-sweep", help="run directories")
    parser.add_argument("--lock", default=None, help="a flock file each run waits for")
    parser.add_argument(
        "--json",
        default=str(Path(__file__).with_name("fluency.json")),
        help="where the results go",
    )
    parser.add_argument("--table", action="store_true", help="print the table of --json only")
    args = parser.parse_args()
    if args.table:
        print(table(json.loads(Path(args.json).read_text())["runs"]))
        return
    rows = []
    for loss in LOSSES:
        for weight in WEIGHTS:
            rows.append(run_one(args, loss, weight))
            Path(args.json).write_text(
                json.dumps({"settings": SETTINGS, "runs": rows}, indent=2) + "\n"
            )
            print(f"{loss} w={weight}: done in {rows[-1]['seconds']:.0f} s", flush=True)
    print(table(rows))


if __name__ == "__main__":
    main()
