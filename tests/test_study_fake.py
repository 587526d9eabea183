"""``promptopt study`` end to end on the fake components (milliseconds per run): the grid of run
directories, a hard kill and resume, reruns that do no model work, and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

FAKES = "from promptopt.testing.fakes import *  # noqa: F403\n"

#: The fakes plus a hook that kills the process (SIGKILL, no cleanup) after the first step of
#: the run whose directory ends with $STUDY_KILL_IN, as a crash or `kill -9` would.
KILLER = (
    FAKES
    + """
import os
import signal

from promptopt import hookimpl


@hookimpl
def step_end(run, record):
    target = os.environ.get("STUDY_KILL_IN")
    if target and str(run.run_dir).endswith(target) and record.step == 0:
        os.kill(os.getpid(), signal.SIGKILL)
"""
)

ARGS = ["--methods", "fake", "--tasks", "fake/yes-no", "--seeds", "0,1,2", "-o", "steps=3"]


def study(
    tmp_path: Path, out: Path, *extra: str, plugin: str = FAKES, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    plugin_file = tmp_path / ("killer.py" if plugin is KILLER else "fakes_plugin.py")
    plugin_file.write_text(plugin)
    environment = {
        **os.environ,
        "PROMPTOPT_CACHE_DIR": str(tmp_path / "cache"),
        "PROMPTOPT_PROGRESS": "0",
        **(env or {}),
    }
    command = [sys.executable, "-m", "promptopt", "study", *extra]
    return subprocess.run(
        [*command, "--plugin", str(plugin_file), "--out", str(out)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
    )


def without_costs(report: dict[str, Any]) -> dict[str, Any]:
    """The report minus wall-clock figures (which differ between two executions)."""
    data = json.loads(json.dumps(report))
    for run in data["runs"]:
        run.pop("cost")
    for scope in [data["overall"], *data["tasks"].values()]:
        for summary in scope["methods"].values():
            summary.pop("cost")
    return data


def invocation(out: Path) -> dict[str, Any]:
    return json.loads((out / "last_invocation.json").read_text())


def test_study_is_resumable_after_a_kill_and_reruns_do_no_model_work(tmp_path: Path) -> None:
    straight = tmp_path / "straight"
    proc = study(tmp_path, straight, *ARGS)
    assert proc.returncode == 0, proc.stderr
    for name in ("report.md", "report.json", "accuracy.png", "gain_vs_compute.png", "study.json"):
        assert (straight / name).is_file(), name
    for seed in (0, 1, 2):
        assert (straight / "runs/fake/fake/yes-no" / f"seed{seed}" / "result.json").is_file()
    log = (straight / "study.log").read_text()
    assert "run 1/3: fake fake/yes-no seed 0 (starting)" in log
    assert "run 3/3: fake fake/yes-no seed 2 (starting)" in log
    assert invocation(straight)["runs_executed"] == 3
    assert invocation(straight)["evaluations_computed"] > 0

    # killed (SIGKILL) after the first step of the second run
    killed = tmp_path / "killed"
    proc = study(tmp_path, killed, *ARGS, plugin=KILLER, env={"STUDY_KILL_IN": "seed1"})
    assert proc.returncode == -9, proc.stderr
    seed1 = killed / "runs/fake/fake/yes-no/seed1"
    assert (killed / "runs/fake/fake/yes-no/seed0/result.json").is_file()
    assert (seed1 / "checkpoint.json").is_file() and not (seed1 / "result.json").exists()
    assert not (killed / "runs/fake/fake/yes-no/seed2").exists()
    assert not (killed / "report.md").exists()

    proc = study(tmp_path, killed, *ARGS)  # the same command finishes the study
    assert proc.returncode == 0, proc.stderr
    log = (killed / "study.log").read_text()
    assert "run 1/3: fake fake/yes-no seed 0 (done, skipped)" in log
    assert "run 2/3: fake fake/yes-no seed 1 (resuming)" in log
    assert "run 3/3: fake fake/yes-no seed 2 (starting)" in log
    assert invocation(killed)["runs_executed"] == 2
    resumed_steps = (seed1 / "steps.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in resumed_steps] == [0, 1, 2]

    report = json.loads((killed / "report.json").read_text())
    uninterrupted = json.loads((straight / "report.json").read_text())
    assert without_costs(report) == without_costs(uninterrupted)
    for run in report["runs"]:  # each run's do-no-harm decision, from its result.json
        result = run["result"]
        assert isinstance(result["accepted"], bool) and result["accept_rule"] == "paired"
        assert result["candidate_prompt"] and "accept_p_value" in result
        if not result["accepted"]:
            assert result["best_prompt"] == result["initial_prompt"]
    accepted = sum(run["result"]["accepted"] for run in report["runs"])
    assert report["overall"]["methods"]["fake"]["accepted"] == accepted

    # rerunning the finished study: no run, no evaluation, no model, same report
    before = {p: p.stat().st_mtime_ns for p in killed.rglob("*") if "runs" in p.parts}
    report_json = (killed / "report.json").read_bytes()
    proc = study(tmp_path, killed, *ARGS)
    assert proc.returncode == 0, proc.stderr
    again = invocation(killed)
    assert again["runs_executed"] == 0
    assert again["evaluations_computed"] == 0 and again["evaluations_from_store"] > 0
    assert again["models_loaded"] == 0 and again["generated_tokens"] == 0
    assert {p: p.stat().st_mtime_ns for p in killed.rglob("*") if "runs" in p.parts} == before
    assert (killed / "report.json").read_bytes() == report_json


def test_rerun_with_other_settings_is_refused_naming_the_difference(tmp_path: Path) -> None:
    out = tmp_path / "s"
    assert study(tmp_path, out, *ARGS).returncode == 0
    changed = [*ARGS[:5], "0,1", "-o", "steps=2"]
    proc = study(tmp_path, out, *changed)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert "--seeds: 0,1,2 (study) vs 0,1 (now)" in lines[0]
    assert "-o: steps=3 (study) vs steps=2 (now)" in lines[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--methods", "fakee", "--tasks", "fake/yes-no"], "unknown method 'fakee' in --methods"),
        (["--methods", "fake", "--tasks", "fake/nope"], "unknown task 'fake/nope' in --tasks"),
        (["--methods", "fake", "--tasks", "fake/yes-no", "--seeds", "0,a"], "'a' is not an int"),
        (["--methods", "fake", "--tasks", "fake/yes-no", "--seeds", ","], "names no seed"),
        (["--methods", "fake", "--tasks", "fake/yes-no", "-o", "stepz=1"], "option 'stepz'"),
        (["--methods", "fake", "--tasks", "fake/yes-no", "-o", "seed=1"], "pass --seeds"),
        (
            ["--methods", "fake", "--tasks", "fake/yes-no", "--eval-backend", "nope"],
            "unknown backend 'nope' in --eval-backend",
        ),
        (
            ["--methods", "fake", "--tasks", "fake/yes-no", "--scoring", "vibes"],
            "unknown --scoring 'vibes'",
        ),
    ],
)
def test_bad_input_is_one_line_error(tmp_path: Path, args: list[str], message: str) -> None:
    out = tmp_path / "s"
    proc = study(tmp_path, out, *args)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert message in lines[0]
    assert not out.exists()  # nothing was started


def test_out_that_is_not_a_study_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "busy"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    proc = study(tmp_path, out, *ARGS)
    assert proc.returncode == 2
    assert "holds files but no study.json, so it is not a study" in proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    (out / "notes.txt").unlink()
    (out / "study.json").write_text('{"kind": "something else"}')
    proc = study(tmp_path, out, *ARGS)
    assert proc.returncode == 2 and "is not a promptopt study file" in proc.stderr


def test_empty_prompt_is_the_bare_question(promptopt_fakes: Any) -> None:
    """The empty-prompt baseline shows the model the question alone (Task.user_turn)."""
    from promptopt.testing.fakes import ListTask
    from promptopt.types import Prompt

    task = ListTask()
    example = task.examples("test")[0]
    assert task.user_turn(example, Prompt("")) == example.question
    assert task.user_turn(example, Prompt("  ")) == example.question
    assert task.user_turn(example, Prompt("Use care.")) == example.question + " Use care."
    assert task.user_turn(example, Prompt("Be brief.", separator="\n")) == (
        example.question + "\nBe brief."
    )
