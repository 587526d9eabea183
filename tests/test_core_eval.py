"""``promptopt eval`` end to end on the tiny model, and the bootstrap interval."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from promptopt.evaluation import bootstrap_interval


def test_bootstrap_interval_brackets_the_mean() -> None:
    outcomes = [True] * 30 + [False] * 70
    low, high = bootstrap_interval(outcomes)
    assert low < 0.3 < high
    assert 0.05 < high - low < 0.3  # about 2 * 1.96 * sqrt(.21/100) = 0.18
    assert bootstrap_interval([True] * 10) == (1.0, 1.0)
    assert bootstrap_interval(outcomes, seed=1) == bootstrap_interval(outcomes, seed=1)


def run_eval(args: list[str], cache_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PROMPTOPT_CACHE_DIR": str(cache_dir), "PROMPTOPT_PROGRESS": "0"}
    return subprocess.run(
        [sys.executable, "-m", "promptopt", "eval", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


@pytest.mark.parametrize("scoring", ["generate", "logprob"])
def test_eval_writes_outcomes_and_summary(
    tiny_model_dir: Path, shared_data_dir: Path, tmp_path: Path, scoring: str
) -> None:
    out = tmp_path / "eval"
    args = [
        "--task",
        "bbh/boolean_expressions",
        "--backend",
        "hf",
        "--model",
        str(tiny_model_dir),
        "--split",
        "test",
        "--limit",
        "4",
        "--prompt",
        "Use careful logic.",
        "--scoring",
        scoring,
        "--max-new-tokens",
        "8",
        "--data-dir",
        str(shared_data_dir),
        "--out",
        str(out),
    ]
    proc = run_eval(args, tmp_path / "cache")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    printed = json.loads(proc.stdout)
    assert printed == summary
    assert summary["n"] == 4 and summary["split"] == "test" and summary["scoring"] == scoring
    assert summary["ci_low"] <= summary["accuracy"] <= summary["ci_high"]
    rows = [json.loads(line) for line in (out / "examples.jsonl").read_text().splitlines()]
    assert len(rows) == 4
    assert summary["correct"] == sum(row["correct"] for row in rows)
    for row in rows:
        assert row["gold"] in ("True", "False")
        assert row["correct"] == (row["predicted"] == row["gold"])
        if scoring == "logprob":
            assert set(row["option_logprobs"]) == {"True", "False"}
            best = max(row["option_logprobs"], key=row["option_logprobs"].get)
            assert row["predicted"] == best

    again = run_eval(args, tmp_path / "cache")
    assert again.returncode == 0, again.stderr
    second = json.loads(again.stdout)
    assert second["accuracy"] == summary["accuracy"]
    assert second["cache_hits"] == 4
    changed = run_eval([*args, "--max-new-tokens", "9"], tmp_path / "cache")  # last value wins
    assert json.loads(changed.stdout)["cache_hits"] == 0


def test_eval_needs_exactly_one_prompt_source(tiny_model_dir: Path, tmp_path: Path) -> None:
    proc = run_eval(["--task", "folio", "--model", str(tiny_model_dir)], tmp_path)
    assert proc.returncode == 2 and "exactly one of --prompt and --run" in proc.stderr
