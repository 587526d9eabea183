"""A real study of GReaTer on the embedded SmolLM2-135M (real transformers, real BBH data), then
the same command again, which must do no model work."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

#: Run ``promptopt study`` in-process and report which heavy libraries got imported.
RERUN = """
import sys
from promptopt.cli import main
try:
    main({args!r})
except SystemExit as exc:
    if exc.code:
        raise
heavy = sorted(m for m in ("torch", "transformers", "llama_cpp") if m in sys.modules)
print("HEAVY=" + ",".join(heavy), file=sys.stderr)
"""


@pytest.fixture
def cache_env(tmp_path: Path) -> dict[str, str]:
    """A fresh evaluation cache, reusing the converted embedded model (saves ~20 s)."""
    shared_models = Path.home() / ".cache" / "promptopt" / "models"
    shared_models.mkdir(parents=True, exist_ok=True)
    root = tmp_path / "cache"
    root.mkdir()
    (root / "models").symlink_to(shared_models, target_is_directory=True)
    return {
        **os.environ,
        "PROMPTOPT_CACHE_DIR": str(root),
        "PROMPTOPT_PROGRESS": "0",
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
    }


@pytest.mark.slow
def test_a_study_on_the_embedded_model_then_the_same_command_again(
    shared_data_dir: Path, tmp_path: Path, cache_env: dict[str, str]
) -> None:
    out = tmp_path / "study"
    args = [
        "study",
        "--methods",
        "greater",
        "--tasks",
        "bbh/navigate",
        "--seeds",
        "0",
        "-o",
        "steps=1",
        "-o",
        "train_size=2",
        "-o",
        "dev_size=2",
        "-o",
        "max_new_tokens=16",
        "--test-limit",
        "10",
        "--data-dir",
        str(shared_data_dir),
        "--out",
        str(out),
    ]
    proc = subprocess.run(
        [sys.executable, "-m", "promptopt", *args],
        capture_output=True,
        text=True,
        env=cache_env,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("report.md", "report.json", "accuracy.png", "gain_vs_compute.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    first = json.loads((out / "last_invocation.json").read_text())
    assert first["runs_executed"] == 1
    assert first["models_loaded"] == 1
    assert first["generated_tokens"] > 0

    report = json.loads((out / "report.json").read_text())
    (run,) = report["runs"]
    # one evaluation per distinct prompt: best, initial and empty (the do-no-harm rule may
    # have handed the initial prompt back as the best)
    prompts = {run["best"]["prompt"], run["initial"]["prompt"], ""}
    assert first["evaluations_computed"] == len(prompts)
    assert run["method"] == "greater" and run["task"] == "bbh/navigate" and run["seed"] == 0
    assert run["best"]["n"] == run["initial"]["n"] == 10
    counts = run["vs_initial"]
    assert counts["both_correct"] + counts["only_a"] + counts["only_b"] + counts["both_wrong"] == 10
    assert run["initial"]["prompt"].startswith("Use proper logical reasoning")
    test_set = report["test_sets"][run["test_set"]]
    assert test_set["n"] == 10 and test_set["empty"]["prompt"] == ""
    assert test_set["majority_answer"] in ("Yes", "No")
    # held-out only: the first 10 test examples of the run's own splits, none seen in training
    from promptopt.registry import get_registry

    task_cls = get_registry().get("task", "bbh/navigate")
    task = task_cls(task_cls.Options(data_dir=shared_data_dir, train_size=2, dev_size=2))
    assert test_set["example_ids"] == [ex.id for ex in task.examples("test")[:10]]
    seen = {ex.id for split in ("train", "dev") for ex in task.examples(split)}
    assert seen and not seen & set(test_set["example_ids"])
    text = (out / "report.md").read_text()
    assert "| greater seed 0 | 0 |" in text and "| empty prompt |" in text
    assert "| majority class (" in text and "| initial prompt (greater) |" in text

    # the same command again: no run, no evaluation, no model (not even torch imported)
    report_bytes = (out / "report.json").read_bytes()
    rerun = subprocess.run(
        [sys.executable, "-c", RERUN.format(args=args)],
        capture_output=True,
        text=True,
        env=cache_env,
        timeout=300,
    )
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    heavy = [line for line in rerun.stderr.splitlines() if line.startswith("HEAVY=")]
    assert heavy == ["HEAVY="], rerun.stderr[-3000:]
    again = json.loads((out / "last_invocation.json").read_text())
    assert again["runs_executed"] == 0 and again["evaluations_computed"] == 0
    assert again["models_loaded"] == 0 and again["generated_tokens"] == 0
    assert again["evaluations_from_store"] == 3
    assert (out / "report.json").read_bytes() == report_bytes


@pytest.mark.slow
def test_pilot_makes_a_white_box_methods_initial_prompt_with_its_own_backend(
    shared_data_dir: Path, tmp_path: Path, cache_env: dict[str, str]
) -> None:
    """GReaTer's initial prompt needs the transformers model its runs use; the pilot must not
    hand it the llama.cpp evaluation backend."""
    pytest.importorskip("llama_cpp")
    out = tmp_path / "pilot-study"
    args = ["study", "--pilot", "--methods", "greater", "--tasks", "bbh/navigate"]
    args += ["-o", "dev_size=2", "-o", "max_new_tokens=4", "--eval-backend", "llamacpp"]
    args += ["--data-dir", str(shared_data_dir), "--out", str(out)]
    proc = subprocess.run(
        [sys.executable, "-m", "promptopt", *args],
        capture_output=True,
        text=True,
        env=cache_env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    pilot = json.loads((out / "pilot" / "pilot.json").read_text())
    rows = pilot["tasks"]["bbh/navigate"]["generate"]["rows"]
    initial = rows["initial prompt (greater)"]
    assert initial["prompt"].startswith("Use proper logical reasoning") and initial["n"] == 2
    assert not (out / "study.json").exists()
