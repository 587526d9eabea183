"""``--task FILE.csv`` through the command line: ``eval`` and ``run gpo`` on the tiny model,
``--dry-run``, one-line errors before any model loads, a study over a data file (fake
components) that refuses an edited file, and ``transfer`` reading the task from the run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from datafiles import sports_rows, write_rows

from promptopt.cli import main

COLUMNS = ["-o", "task.question=sentence", "-o", "task.answer=verdict"]


def cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run ``promptopt ARGS`` in this process: exit status, stdout, stderr."""
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def sports_csv(tmp_path: Path) -> Path:
    """120 sentences with a plausible/implausible verdict, columns ``sentence,verdict``."""
    folder = tmp_path / "data"
    folder.mkdir()
    return write_rows(folder / "sports.csv", sports_rows(120))


def test_eval_on_a_csv_prints_a_score_with_an_interval(
    tiny_model_dir: Path, sports_csv: Path, tmp_path: Path
) -> None:
    out = tmp_path / "eval"
    args = ["eval", "--task", str(sports_csv), *COLUMNS, "--backend", "hf",
            "--model", str(tiny_model_dir), "--prompt", "Think it through.", "--limit", "4",
            "--max-new-tokens", "4", "--scoring", "logprob", "--out", str(out)]  # fmt: skip
    env = {**os.environ, "PROMPTOPT_CACHE_DIR": str(tmp_path / "cache"), "PROMPTOPT_PROGRESS": "0"}
    proc = subprocess.run(
        [sys.executable, "-m", "promptopt", *args],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["task"] == str(sports_csv) and summary["n"] == 4
    assert 0 <= summary["ci_low"] <= summary["accuracy"] <= summary["ci_high"] <= 1
    assert (
        f"promptopt: task {sports_csv}: data: {sports_csv}; rows: 120; question: column "
        "'sentence'; answer: column 'verdict'; answer type: choice; answer type reason: 2 "
        "distinct labels in 120 rows; labels: implausible, plausible" in proc.stderr
    )
    rows = [json.loads(line) for line in (out / "examples.jsonl").read_text().splitlines()]
    for row in rows:
        assert set(row["option_logprobs"]) == {"plausible", "implausible"}
        assert row["gold"] in ("plausible", "implausible")
        assert row["example_id"].startswith("sports/")


def test_eval_with_a_missing_column_is_one_line_before_any_model_loads(
    sports_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["eval", "--task", str(sports_csv), "-o", "task.answer=nope", "--prompt", "x",
            "--model", "/nonexistent/model"]  # fmt: skip
    code, _, err = cli(args, capsys)
    assert code == 2
    (line,) = err.strip().splitlines()
    assert line.startswith(f"promptopt: error: {sports_csv} has no column 'nope'")
    assert "its columns: sentence, verdict" in line


def test_dry_run_shows_the_answer_type_and_why(
    sports_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(["run", "gpo", "--task", str(sports_csv), *COLUMNS,
                          "-o", "train_size=8", "--dry-run"], capsys)  # fmt: skip
    assert code == 0, err
    plan = json.loads(out)
    assert plan["splits"] == {"train": 8, "dev": 56, "test": 56}
    assert plan["task_details"]["answer_type_reason"] == "2 distinct labels in 120 rows"
    assert plan["options"]["task"]["question"] == {"value": "sentence", "source": "user"}


def test_questions_repeated_across_splits_are_a_one_line_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = sports_rows(120)
    for i in range(0, 120, 6):
        rows[i]["sentence"] = "Le Bron James scored a touchdown."
    path = write_rows(tmp_path / "dups.csv", rows)
    code, _, err = cli(["run", "gpo", "--task", str(path), *COLUMNS, "--dry-run"], capsys)
    assert code == 0, err
    (line,) = err.strip().splitlines()
    assert line.startswith(f"promptopt: warning: {path}: 1 question(s) appear in more than one")


def test_gpo_runs_on_a_csv_with_the_tiny_model(
    tiny_model_dir: Path,
    sports_csv: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from promptopt.filehash import file_sha256

    monkeypatch.setenv("PROMPTOPT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    code, out, err = cli(
        ["run", "gpo", "--task", str(sports_csv), *COLUMNS, "--backend", "hf",
         "--model", str(tiny_model_dir), "--no-progress", "-o", "steps=1", "-o", "dev_size=4",
         "-o", "train_size=8", "-o", "samples=2", "-o", "retries=1",
         "-o", "optimizer_max_tokens=8", "-o", "max_new_tokens=4"],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    (run,) = (tmp_path / "runs").iterdir()
    assert run.name.startswith("gpo-sports-")  # the file's stem, not its path
    result = json.loads((run / "result.json").read_text())
    assert json.loads(out)["best_prompt"] == result["best_prompt"]
    assert result["steps_run"] == 1 and result["dev_size"] == 4
    config = json.loads((run / "config.json").read_text())
    assert config["task"] == str(sports_csv)
    assert config["task_identity"] == {"sha256": file_sha256(sports_csv)}
    assert "-o question=sentence -o answer=verdict" in err.strip().splitlines()[-1]


# ----------------------------------------------------------------------------- study

FAKES = "from promptopt.testing.fakes import *  # noqa: F403\n"


def study(tmp_path: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    plugin = tmp_path / "fakes_plugin.py"
    plugin.write_text(FAKES)
    env = {**os.environ, "PROMPTOPT_CACHE_DIR": str(tmp_path / "cache"), "PROMPTOPT_PROGRESS": "0"}
    return subprocess.run(
        [sys.executable, "-m", "promptopt", "study", *args, "--plugin", str(plugin)],
        capture_output=True, text=True, env=env, timeout=300, cwd=cwd,
    )  # fmt: skip


def test_a_study_over_a_data_file_refuses_the_file_once_edited(
    sports_csv: Path, tmp_path: Path
) -> None:
    out = tmp_path / "study"
    args = ["--methods", "fake", "--tasks", "sports.csv", "--seeds", "0", "--out", str(out),
            "-o", "steps=1", *COLUMNS]  # fmt: skip
    proc = study(tmp_path, *args, cwd=sports_csv.parent)
    assert proc.returncode == 0, proc.stderr
    run = out / "runs" / "fake" / "sports" / "seed0"
    assert (run / "result.json").is_file()
    report = json.loads((out / "report.json").read_text())
    assert [r["task"] for r in report["runs"]] == [str(sports_csv)]  # made absolute
    args[3] = str(sports_csv)
    rerun = study(tmp_path, *args)  # the same study from another folder
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads((out / "last_invocation.json").read_text())["evaluations_computed"] == 0
    rows = sports_rows(120)
    rows[1]["verdict"] = "plausible"  # was implausible
    write_rows(sports_csv, rows)
    edited = study(tmp_path, *args)
    assert edited.returncode == 2
    (line,) = edited.stderr.strip().splitlines()
    assert f"task {str(sports_csv)!r} changed since the run started: its sha256 was" in line
    assert f"move {str(run)!r} away" in line


def test_a_study_names_two_files_that_would_share_a_folder(tmp_path: Path) -> None:
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
    first = write_rows(tmp_path / "a" / "x.csv", sports_rows(60))
    second = write_rows(tmp_path / "b" / "x.csv", sports_rows(60))
    proc = study(tmp_path, "--methods", "fake", "--tasks", f"{first},{second}",
                 "--out", str(tmp_path / "study"), *COLUMNS)  # fmt: skip
    assert proc.returncode == 2
    assert "would share the run folder runs/<method>/x (rename one of the files)" in proc.stderr
    assert not (tmp_path / "study").exists()


# ----------------------------------------------------------------------------- transfer


def test_transfer_reads_the_data_file_task_from_the_run(
    tiny_gguf: Path, sports_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("llama_cpp")  # protection only: CI installs llama-cpp-python
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"method": "gpo", "task": str(sports_csv)}))
    prompts: dict[str, Any] = {"initial_prompt": "Think.", "best_prompt": "Judge it."}
    (run / "result.json").write_text(json.dumps(prompts))
    out = tmp_path / "transfer"
    code, _, err = cli(["transfer", "--run", str(run), "--models", str(tiny_gguf), *COLUMNS,
                        "--limit", "2", "--max-new-tokens", "4", "--out", str(out),
                        "--no-progress"], capsys)  # fmt: skip
    assert code == 0, err
    matrix = json.loads((out / "transfer.json").read_text())
    assert matrix["task"] == str(sports_csv)
    assert [row["initial"]["n"] for row in matrix["rows"]] == [2]
    assert "answer type reason: 2 distinct labels in 120 rows" in err
