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
    assert summary["metric"] == "exact" and "score" not in summary  # right or wrong: accuracy
    rows = [json.loads(line) for line in (out / "examples.jsonl").read_text().splitlines()]
    assert len(rows) == 4
    assert summary["correct"] == sum(row["correct"] for row in rows)
    for row in rows:
        assert row["gold"] in ("True", "False")
        assert row["correct"] == (row["predicted"] == row["gold"])
        assert row["score"] == (1.0 if row["correct"] else 0.0)
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


def test_eval_of_the_empty_prompt_is_the_studys_bare_question_baseline(
    smollm2: Path, shared_data_dir: Path, tmp_path: Path
) -> None:
    """``--prompt ""`` evaluates the bare question, labelled as such, with exactly the model
    inputs a study's empty-prompt baseline uses (so its outputs serve that evaluation)."""
    out = tmp_path / "eval"
    args = ["--task", "bbh/navigate", "--backend", "llamacpp", "--model", "smollm2"]
    args += ["--limit", "2", "--max-new-tokens", "8", "--data-dir", str(shared_data_dir)]
    proc = run_eval([*args, "--prompt", "", "--out", str(out)], tmp_path / "cache")
    assert proc.returncode == 0, proc.stderr
    assert "promptopt: evaluated the empty prompt (the bare question)" in proc.stderr

    from promptopt.evalcache import EvalCache
    from promptopt.evalsetup import build_task_and_backend
    from promptopt.evaluation import EMPTY_PROMPT_LABEL, evaluate
    from promptopt.studies.evaluate import ANSWER_MAX_TOKENS
    from promptopt.types import Prompt

    summary = json.loads(proc.stdout)
    assert summary == json.loads((out / "summary.json").read_text())
    assert summary["prompt"] == "" and summary["prompt_label"] == EMPTY_PROMPT_LABEL
    assert summary["n"] == 2 and summary["split"] == "test"

    blank = run_eval([*args, "--prompt", "  "], tmp_path / "cache")  # blank: the same prompt
    assert blank.returncode == 0, blank.stderr
    assert json.loads(blank.stdout)["cache_hits"] == 2

    options = {"data_dir": str(shared_data_dir)}
    task, backend = build_task_and_backend("bbh/navigate", "llamacpp", "smollm2", options)
    try:
        as_a_study_does = evaluate(  # promptopt.studies.evaluate scores "" this way
            backend,
            task,
            Prompt(text="", separator=None),
            task.examples("test")[:2],
            max_new_tokens=8,
            answer_max_tokens=ANSWER_MAX_TOKENS,
            split="test",
            cache=EvalCache(tmp_path / "cache" / "evals"),
        )
    finally:
        backend.close()
    assert as_a_study_does.cache_hits == 2
    assert as_a_study_does.accuracy == summary["accuracy"]


# ----------------------------------------------------------------------------- write failures


def eval_args(tiny_model_dir: Path, shared_data_dir: Path, *extra: str) -> list[str]:
    return [
        "--task",
        "bbh/boolean_expressions",
        "--backend",
        "hf",
        "--model",
        str(tiny_model_dir),
        "--limit",
        "3",
        "--prompt",
        "Use careful logic.",
        "--max-new-tokens",
        "6",
        "--data-dir",
        str(shared_data_dir),
        *extra,
    ]


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


def cached_entries(cache_dir: Path) -> list[Path]:
    return list((cache_dir / "evals").rglob("*.json")) if (cache_dir / "evals").is_dir() else []


def test_unwritable_out_fails_before_any_evaluation(
    tiny_model_dir: Path, shared_data_dir: Path, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    out = blocker / "eval"
    proc = run_eval(eval_args(tiny_model_dir, shared_data_dir, "--out", str(out)), tmp_path / "c")
    line = one_error_line(proc)
    assert "--out" in line and str(out) in line
    assert cached_entries(tmp_path / "c") == []  # nothing was generated


def test_failed_report_write_names_the_file_and_keeps_the_cache(
    tiny_model_dir: Path, shared_data_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "eval"
    (out / "examples.jsonl").mkdir(parents=True)  # the write of this file fails after the work
    proc = run_eval(eval_args(tiny_model_dir, shared_data_dir, "--out", str(out)), tmp_path / "c")
    line = one_error_line(proc)
    assert "examples.jsonl" in line and "cache" in line
    assert cached_entries(tmp_path / "c")
    again = run_eval(
        eval_args(tiny_model_dir, shared_data_dir, "--out", str(tmp_path / "ok")), tmp_path / "c"
    )
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["cache_hits"] == 3  # nothing generated twice


def test_unwritable_cache_warns_once_and_evaluates(
    tiny_model_dir: Path, shared_data_dir: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "c"
    cache.mkdir()
    (cache / "evals").write_text("a file where the cache folder should be")
    out = tmp_path / "eval"
    proc = run_eval(eval_args(tiny_model_dir, shared_data_dir, "--out", str(out)), cache)
    assert proc.returncode == 0, proc.stderr
    warnings = [ln for ln in proc.stderr.splitlines() if "cache" in ln]
    assert len(warnings) == 1 and "without caching" in warnings[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert json.loads(proc.stdout)["n"] == 3 and (out / "summary.json").is_file()


def test_limit_above_the_split_size_says_so(
    tiny_model_dir: Path, shared_data_dir: Path, tmp_path: Path
) -> None:
    args = eval_args(tiny_model_dir, shared_data_dir, "--limit", "5", "-o", "test_size=2")
    proc = run_eval(args, tmp_path / "c")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["n"] == 2
    lines = [ln for ln in proc.stderr.splitlines() if "--limit" in ln]
    assert len(lines) == 1, proc.stderr
    assert "--limit 5" in lines[0] and "2 examples" in lines[0] and "test split" in lines[0]


def test_eval_routes_scoped_options_as_a_run_does(
    smollm2: Path, shared_data_dir: Path, tmp_path: Path
) -> None:
    """``-o backend.n_ctx=2048`` reaches the backend (it was refused as unknown); a key that
    no component of the command declares is one line naming the valid ones."""
    args = [
        "--task", "bbh/navigate", "--backend", "llamacpp", "--model", "smollm2", "--limit", "2",
        "--max-new-tokens", "8", "--prompt", "Think.", "--data-dir", str(shared_data_dir),
    ]  # fmt: skip
    proc = run_eval([*args, "-o", "backend.n_ctx=2048"], tmp_path / "cache")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["n"] == 2
    proc = run_eval([*args, "-o", "backend.n_ctxx=2048"], tmp_path / "cache")
    assert proc.returncode == 2 and "is not an option of backend 'llamacpp'" in proc.stderr
    proc = run_eval([*args, "-o", "data_dir=/tmp"], tmp_path / "cache")
    assert proc.returncode == 2 and "'data_dir' is a run setting" in proc.stderr


def test_evaluation_feeds_a_backend_its_declared_parallel_width() -> None:
    """Chunks are as wide as the backend says it works (no attribute probing): 13 examples on
    a width-6 backend are 3 chunks, each one reasoning call and one answer call."""
    from promptopt.evaluation import eval_chunk_size, evaluate
    from promptopt.testing.fakes import FakeBackend, ListTask
    from promptopt.types import Prompt

    class SixWide(FakeBackend):
        @property
        def parallel_width(self) -> int:
            return 6

    task = ListTask()
    examples = (task.examples("train") * 4)[:13]
    backend = SixWide(None)
    assert eval_chunk_size(backend) == 6 and eval_chunk_size(FakeBackend(None)) == 4
    evaluate(backend, task, Prompt("Think."), examples, max_new_tokens=4, cache=None)
    assert backend.usage.requests == 2 * 3
