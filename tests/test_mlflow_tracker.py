"""``--tracker mlflow`` (plugins/promptopt-mlflow) against a real local file store and a real
``mlflow server`` on 127.0.0.1, read back through MLflow's client: parameters, per-step losses,
artifacts, the final prompt in the prompt registry, a study's nested runs; a server that is
down costs one warning line and never the run."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

mlflow = pytest.importorskip("mlflow", reason="mlflow is not installed (pip install mlflow)")
if importlib.util.find_spec("promptopt_mlflow") is None:
    pytest.skip(
        "promptopt-mlflow is not installed (pip install -e plugins/promptopt-mlflow)",
        allow_module_level=True,
    )

FAKES = "from promptopt.testing.fakes import *  # noqa: F403\n"


def promptopt(
    tmp: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    plugin = tmp / "fakes_plugin.py"
    plugin.write_text(FAKES)
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "PROMPTOPT_TR"))},
        "PROMPTOPT_CACHE_DIR": str(tmp / "cache"),
        "PROMPTOPT_PROGRESS": "0",
        "PROMPTOPT_PLUGIN_PATHS": str(plugin),
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "promptopt", *args],
        capture_output=True,
        text=True,
        env=environment,
        cwd=tmp,
        timeout=300,
    )


def client(uri: str) -> Any:
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    mlflow.set_tracking_uri(uri)
    return mlflow.MlflowClient(tracking_uri=uri)


def runs_of(mlc: Any) -> list[Any]:
    experiment = mlc.get_experiment_by_name("promptopt")
    assert experiment is not None
    return list(mlc.search_runs([experiment.experiment_id]))


def losses(run_dir: Path) -> list[float]:
    lines = (run_dir / "steps.jsonl").read_text().splitlines()
    return [json.loads(line)["loss"] for line in lines]


def test_a_run_in_a_file_store(tmp_path: Path) -> None:
    uri = f"file:{tmp_path / 'store'}"
    run_dir = tmp_path / "run"
    args = ["run", "fake", "--task", "fake/yes-no", "-o", "steps=3", "--out", str(run_dir)]
    proc = promptopt(tmp_path, *args, "--tracker", "mlflow", env={"MLFLOW_TRACKING_URI": uri})
    assert proc.returncode == 0, proc.stderr
    assert "warning" not in proc.stderr, proc.stderr
    result = json.loads((run_dir / "result.json").read_text())
    mlc = client(uri)
    (run,) = runs_of(mlc)
    assert run.info.status == "FINISHED"
    assert run.data.params["method"] == "fake" and run.data.params["options.steps"] == "3"
    history = mlc.get_metric_history(run.info.run_id, "loss")
    assert [(m.step, m.value) for m in history] == list(enumerate(losses(run_dir)))
    assert run.data.metrics["steps_run"] == result["steps_run"] == 3
    assert run.data.metrics["task.generated_tokens"] > 0
    artifacts = {a.path for a in mlc.list_artifacts(run.info.run_id)}
    assert {"config.json", "steps.jsonl", "result.json", "report.html", "losses.png"} <= artifacts
    assert "checkpoint.json" not in artifacts
    prompt = mlflow.genai.load_prompt(run.data.tags["promptopt.prompt"])
    assert prompt.name == "promptopt-fake-fake-yes-no"
    assert prompt.template == result["best_prompt"]
    assert prompt.tags["task"] == "fake/yes-no" and prompt.tags["model"] == result["model"]
    assert "dev_score" in prompt.tags


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[str]:
    """A real ``mlflow server`` on 127.0.0.1 (SQLite store, local artifacts)."""
    port = free_port()
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        [
            sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
            "--backend-store-uri", f"sqlite:///{tmp_path / 'mlflow.db'}",
            "--artifacts-destination", str(tmp_path / "artifacts"), "--workers", "1",
        ],
        stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail("mlflow server did not start: " + (tmp_path / "server.log").read_text())
            time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def test_a_study_on_a_server_is_a_parent_run_with_nested_runs(
    tmp_path: Path, mlflow_server: str
) -> None:
    out = tmp_path / "study"
    args = ["--methods", "fake", "--tasks", "fake/yes-no", "--seeds", "0,1", "-o", "steps=2"]
    env = {"MLFLOW_TRACKING_URI": mlflow_server, "PROMPTOPT_TRACKER": "mlflow"}
    proc = promptopt(tmp_path, "study", *args, "--out", str(out), env=env)
    assert proc.returncode == 0, proc.stderr
    assert "warning" not in proc.stderr, proc.stderr
    mlc = client(mlflow_server)
    runs = runs_of(mlc)
    (parent,) = [r for r in runs if r.data.tags.get("promptopt.kind") == "study"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(r.info.run_name for r in children) == [
        "fake fake/yes-no seed 0",
        "fake fake/yes-no seed 1",
    ]
    for child in children:
        seed = child.data.params["seed"]
        run_dir = out / "runs/fake/fake/yes-no" / f"seed{seed}"
        history = mlc.get_metric_history(child.info.run_id, "loss")
        assert [m.value for m in sorted(history, key=lambda m: m.step)] == losses(run_dir)
        prompt = mlflow.genai.load_prompt(child.data.tags["promptopt.prompt"])
        assert prompt.template == json.loads((run_dir / "result.json").read_text())["best_prompt"]
    artifacts = {a.path for a in mlc.list_artifacts(parent.info.run_id)}
    assert {"report.md", "report.json", "report.html"} <= artifacts
    assert parent.info.status == "FINISHED"


def test_a_server_that_is_down_is_one_warning_and_the_run_finishes(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    env = {
        "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}",
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
    }
    args = ["run", "fake", "--task", "fake/yes-no", "-o", "steps=2", "--out", str(run_dir)]
    proc = promptopt(tmp_path, *args, "--tracker", "mlflow", env=env)
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "tracker 'mlflow' failed" in warnings[0], proc.stderr
    assert (run_dir / "result.json").is_file() and (run_dir / "report.html").is_file()


def test_nothing_is_tracked_unless_asked_and_unknown_trackers_are_one_line(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    args = ["run", "fake", "--task", "fake/yes-no", "-o", "steps=1", "--out", str(run_dir)]
    proc = promptopt(tmp_path, *args)
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "mlflow.db").exists()
    proc = promptopt(tmp_path, *args[:-1], str(tmp_path / "other"), "--tracker", "nope")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "promptopt: error: unknown tracker 'nope' (--tracker or PROMPTOPT_TRACKER) "
        "(available: mlflow; MLflow's comes with `pip install promptopt-mlflow`)"
    ]
    assert not (tmp_path / "other").exists()
