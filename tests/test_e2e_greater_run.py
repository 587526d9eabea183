"""``promptopt run greater`` end to end: run directory, hooks, resume after interruption."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent
TINY_OPTIONS = ["-o", "steps=3", "-o", "train_size=2", "-o", "dev_size=2", "-o", "max_new_tokens=8"]


def promptopt(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PROMPTOPT_PROGRESS": "0"}
    return subprocess.run(
        [sys.executable, "-m", "promptopt", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )


def tiny_run(model: Path, data: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return promptopt(
        "run",
        "greater",
        "--task",
        "bbh/boolean_expressions",
        "--model",
        str(model),
        "--data-dir",
        str(data),
        "--seed",
        "7",
        "--out",
        str(out),
        *TINY_OPTIONS,
        *extra,
    )


def steps_without_timings(run_dir: Path) -> list[dict[str, Any]]:
    """Step records without what depends on the process (timings, memory, cache refills)."""
    rows = [json.loads(line) for line in (run_dir / "steps.jsonl").read_text().splitlines()]
    for row in rows:
        row.pop("timings")
        row.pop("compute")
    return rows


@pytest.fixture(scope="module")
def full_run(
    tiny_model_dir: Path, shared_data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    out = tmp_path_factory.mktemp("runs") / "full"
    proc = tiny_run(tiny_model_dir, shared_data_dir, out)
    assert proc.returncode == 0, proc.stderr
    return out


def test_run_directory_holds_config_log_steps_checkpoint_and_result(full_run: Path) -> None:
    for name in (
        "config.json",
        "plugins.json",
        "run.log",
        "steps.jsonl",
        "checkpoint.json",
        "result.json",
        "losses.png",
    ):
        assert (full_run / name).is_file(), name
    config = json.loads((full_run / "config.json").read_text())
    assert config["method"] == "greater" and config["options"]["steps"] == 3
    plugins = json.loads((full_run / "plugins.json").read_text())
    assert {"promptopt-greater", "promptopt-hf"} <= {p["distribution"] for p in plugins}
    result = json.loads((full_run / "result.json").read_text())
    assert result["initial_prompt"].startswith("Use")
    assert result["best_prompt"].startswith("Use")
    for key in ("dev_accuracy_initial", "dev_accuracy_final"):
        assert 0.0 <= result[key] <= 1.0
    steps = steps_without_timings(full_run)
    assert [s["step"] for s in steps] == list(range(len(steps)))
    assert 1 <= len(steps) <= 3
    assert result["losses"] == [s["loss"] for s in steps]
    for s in steps:
        assert s["candidates"] and len(s["scores"]) == len(s["candidates"])
        assert s["evaluated"], "the selector evaluates its shortlist exactly"
        assert s["loss"] == min(e["loss"] for e in s["evaluated"])


def test_resume_after_interruption_ends_with_the_same_prompt(
    full_run: Path, tiny_model_dir: Path, shared_data_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "interrupted"
    first = tiny_run(
        tiny_model_dir, shared_data_dir, out, "--plugin", str(HERE / "data" / "interrupt_plugin.py")
    )
    assert first.returncode == 130, first.stderr
    assert f"promptopt run --resume {out}" in first.stderr
    assert not (out / "result.json").exists()
    assert json.loads((out / "checkpoint.json").read_text())["step"] == 2

    resumed = promptopt("run", "--resume", str(out))
    assert resumed.returncode == 0, resumed.stderr
    expected = json.loads((full_run / "result.json").read_text())
    got = json.loads((out / "result.json").read_text())
    assert got["best_prompt"] == expected["best_prompt"]
    assert got["final_step_prompt"] == expected["final_step_prompt"]
    assert got["losses"] == expected["losses"]
    assert steps_without_timings(out) == steps_without_timings(full_run)
    assert "resuming at step 2" in (out / "run.log").read_text()


def test_same_seed_same_prompt(
    full_run: Path, tiny_model_dir: Path, shared_data_dir: Path, tmp_path: Path
) -> None:
    again = tiny_run(tiny_model_dir, shared_data_dir, tmp_path / "again")
    assert again.returncode == 0, again.stderr
    assert steps_without_timings(tmp_path / "again") == steps_without_timings(full_run)


def test_existing_run_directory_is_not_overwritten(
    full_run: Path, tiny_model_dir: Path, shared_data_dir: Path
) -> None:
    before = (full_run / "result.json").read_text()
    proc = tiny_run(tiny_model_dir, shared_data_dir, full_run)
    assert proc.returncode == 2 and "already holds a run" in proc.stderr
    assert (full_run / "result.json").read_text() == before


def test_lifecycle_hooks_fire_in_order(
    tiny_model_dir: Path, shared_data_dir: Path, tmp_path: Path, promptopt_hook_recorder: Any
) -> None:
    from promptopt.config import make_run_config
    from promptopt.runs import start_run

    config = make_run_config(
        {
            "method": "greater",
            "task": "bbh/boolean_expressions",
            "model": str(tiny_model_dir),
            "data_dir": str(shared_data_dir),
            "options": {"steps": 2, "train_size": 2, "dev_size": 2, "max_new_tokens": 8},
        },
        {},
    )
    result = start_run(config, out=tmp_path / "hooks", progress=False).to_dict()
    lifecycle = [
        n for n in promptopt_hook_recorder.names() if n in ("run_start", "step_end", "run_end")
    ]
    n_steps = result["steps_run"]
    assert lifecycle == ["run_start"] + ["step_end"] * n_steps + ["run_end"]
    (end,) = promptopt_hook_recorder.calls_of("run_end")
    assert end.kwargs["result"]["best_prompt"] == result["best_prompt"]


@pytest.mark.slow
def test_main_job_on_the_embedded_model(shared_data_dir: Path, tmp_path: Path) -> None:
    """The README's main job, shortened: GReaTer on FOLIO with the embedded SmolLM2-135M."""
    out = tmp_path / "smol"
    proc = promptopt(
        "run",
        "greater",
        "--task",
        "folio",
        "--data-dir",
        str(shared_data_dir),
        "--out",
        str(out),
        "-o",
        "steps=1",
        "-o",
        "train_size=2",
        "-o",
        "dev_size=2",
        "-o",
        "max_new_tokens=16",
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads((out / "result.json").read_text())
    assert "SmolLM2" in result["model"] or "smollm2" in result["model"].lower()
    assert result["best_prompt"].startswith("Use")
    assert 0.0 <= result["dev_accuracy_final"] <= 1.0
