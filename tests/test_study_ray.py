"""``promptopt study --executor ray`` on a real local Ray instance (2 CPUs), started by the
study itself: the same report as the local executor, and a rerun that does no model work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_study_fake import ARGS, invocation, study, without_costs

pytest.importorskip("ray")


def test_a_ray_study_gives_the_same_report_as_a_local_one(tmp_path: Path) -> None:
    local, distributed = tmp_path / "local", tmp_path / "ray"
    proc = study(tmp_path, local, *ARGS)
    assert proc.returncode == 0, proc.stderr
    proc = study(tmp_path, distributed, *ARGS, "--executor", "ray")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "ray: 3 runs submitted" in proc.stderr
    report = json.loads((local / "report.json").read_text())
    ray_report = json.loads((distributed / "report.json").read_text())
    assert without_costs(ray_report) == without_costs(report)
    runs = sorted(p.parent.name for p in (distributed / "runs").rglob("result.json"))
    assert runs == ["seed0", "seed1", "seed2"]
    assert invocation(distributed)["runs_executed"] == 3

    again = study(tmp_path, distributed, *ARGS, "--executor", "ray")
    assert again.returncode == 0, again.stderr[-3000:]
    counts = invocation(distributed)
    assert counts["runs_executed"] == 0 and counts["evaluations_computed"] == 0


def test_address_without_ray_executor_is_a_one_line_error(tmp_path: Path) -> None:
    proc = study(tmp_path, tmp_path / "x", *ARGS, "--address", "ray://nowhere:10001")
    assert proc.returncode == 2 and "--address is for --executor ray" in proc.stderr


def test_a_ray_studys_summary_counts_the_work_of_its_workers(tmp_path: Path) -> None:
    """The closing line and last_invocation.json count the models the Ray workers loaded and
    the tokens they generated, runs and evaluations alike, as the local executor does."""
    args = [*ARGS[:5], "0,1", "-o", "steps=2"]
    local, distributed = tmp_path / "local", tmp_path / "ray"
    env = {"PROMPTOPT_CACHE_DIR": str(tmp_path / "c1")}
    assert study(tmp_path, local, *args, env=env).returncode == 0
    proc = study(
        tmp_path, distributed, *args, "--executor", "ray",
        env={"PROMPTOPT_CACHE_DIR": str(tmp_path / "c2")},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    counts, expected = invocation(distributed), invocation(local)
    assert counts["run_models_loaded"] == expected["run_models_loaded"] == 2
    assert counts["run_generated_tokens"] == expected["run_generated_tokens"] > 0
    # workers may evaluate a shared baseline (the empty prompt) each: at least the local count
    assert counts["generated_tokens"] >= expected["generated_tokens"] > 0
    assert counts["models_loaded"] >= 1 and counts["evaluations_computed"] > 0
    done = next(line for line in proc.stderr.splitlines() if "study: done:" in line)
    assert f"(2 models loaded, {counts['run_generated_tokens']} tokens generated)" in done
    assert f"{counts['generated_tokens']} tokens generated); wrote" in done
