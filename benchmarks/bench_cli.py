"""Start-up time of the CLI: ``promptopt --help`` and ``promptopt plugins`` (goal: --help < 0.5 s).

Writes JSON with the median and best of several fresh processes for each command.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

COMMANDS = {"help": ["--help"], "plugins": ["plugins"], "methods": ["methods"]}


def time_command(args: list[str], repeats: int) -> list[float]:
    """Wall seconds of ``repeats`` fresh ``python -m promptopt ARGS`` processes."""
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "promptopt", *args], check=True, capture_output=True)
        seconds.append(time.perf_counter() - start)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("results/bench_cli.json"))
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    time_command(["--help"], 1)  # warm the file cache
    report = {}
    for name, command in COMMANDS.items():
        runs = time_command(command, args.repeats)
        report[name] = {
            "median_s": round(statistics.median(runs), 3),
            "best_s": round(min(runs), 3),
            "runs": [round(r, 3) for r in runs],
        }
    report["help_under_half_second"] = report["help"]["median_s"] < 0.5
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
