"""Trackers (``--tracker NAME`` / ``PROMPTOPT_TRACKER``) with a tracker registered by a plugin
file: the calls it gets for a run and a study, and a failing tracker that costs one warning
line and never the run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PLUGIN = """
import json
import os

from promptopt import hookimpl
from promptopt.testing.fakes import *  # noqa: F403
from promptopt.tracking import Tracker


class Recorder(Tracker):
    name = "recorder"

    def __init__(self):
        self.path = os.environ["RECORD_TO"]

    def _write(self, *event):
        with open(self.path, "a") as handle:
            handle.write(json.dumps([str(e) for e in event]) + "\\n")

    def run_start(self, run):
        self._write("run_start", run.config["seed"])

    def step_end(self, run, record):
        if os.environ.get("RECORD_FAIL") and record.step == 0:
            raise ConnectionError("server down")
        self._write("step_end", record.step, record.loss)

    def run_end(self, run, result):
        self._write("run_end", (run.run_dir / "report.html").is_file())

    def study_start(self, root, settings):
        self._write("study_start", settings["seeds"])

    def study_end(self, root, files):
        self._write("study_end", sorted(p.name for p in files))

    def close(self, failed):
        self._write("close", failed)


@hookimpl
def register_trackers(register):
    register(Recorder)
"""


def promptopt(tmp: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    plugin = tmp / "recorder.py"
    plugin.write_text(PLUGIN)
    environment = {
        **os.environ,
        "PROMPTOPT_CACHE_DIR": str(tmp / "cache"),
        "PROMPTOPT_PROGRESS": "0",
        "PROMPTOPT_PLUGIN_PATHS": str(plugin),
        "RECORD_TO": str(tmp / "events.jsonl"),
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "promptopt", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
    )


def events(tmp: Path) -> list[list[str]]:
    path = tmp / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_a_run_and_a_study_reach_the_tracker(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    args = ["run", "fake", "--task", "fake/yes-no", "-o", "steps=2", "--out", str(run_dir)]
    proc = promptopt(tmp_path, *args, "--tracker", "recorder")
    assert proc.returncode == 0, proc.stderr
    lines = (run_dir / "steps.jsonl").read_text().splitlines()
    losses = [json.loads(line)["loss"] for line in lines]
    assert events(tmp_path) == [
        ["run_start", "0"],
        ["step_end", "0", str(losses[0])],
        ["step_end", "1", str(losses[1])],
        ["run_end", "True"],  # report.html is written before trackers see the end
        ["close", "False"],
    ]
    (tmp_path / "events.jsonl").unlink()
    study = ["study", "--methods", "fake", "--tasks", "fake/yes-no", "--seeds", "0,1"]
    proc = promptopt(
        tmp_path,
        *study,
        "-o",
        "steps=1",
        "--out",
        str(tmp_path / "s"),
        PROMPTOPT_TRACKER="recorder",
    )
    assert proc.returncode == 0, proc.stderr
    seen = events(tmp_path)
    assert seen[0] == ["study_start", "0,1"]
    assert [e[0] for e in seen[1:-2]] == ["run_start", "step_end", "run_end"] * 2
    assert seen[-2][0] == "study_end" and "report.html" in seen[-2][1]
    assert seen[-1] == ["close", "False"]


def test_a_failing_tracker_is_one_warning_and_the_run_goes_on(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    args = ["run", "fake", "--task", "fake/yes-no", "-o", "steps=3", "--out", str(run_dir)]
    proc = promptopt(tmp_path, *args, "--tracker", "recorder", RECORD_FAIL="1")
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if "warning" in line]
    assert warnings == [
        "promptopt: warning: tracker 'recorder' failed in step_end (server down); "
        "continuing without it"
    ]
    # left out after its failure, but still closed
    assert events(tmp_path) == [["run_start", "0"], ["close", "False"]]
    assert json.loads((run_dir / "result.json").read_text())["steps_run"] == 3


def test_unknown_tracker_is_one_line_before_any_work(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["run", "fake", "--task", "fake/yes-no", "--out", str(out), "--tracker", "nope"]
    proc = promptopt(tmp_path, *args)
    assert proc.returncode == 2
    line = proc.stderr.strip()
    assert line.startswith("promptopt: error: unknown tracker 'nope'") and "recorder" in line
    assert "\n" not in line and not out.exists()
