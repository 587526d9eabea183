"""APE and OPRO join ``promptopt study`` like any method: one study over both on the fake
components (the fake model also writes their prompts), every run finished and reported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

FAKES = "from promptopt.testing.fakes import *  # noqa: F403\n"


def test_a_study_runs_ape_and_opro_with_no_special_case(tmp_path: Path) -> None:
    plugin = tmp_path / "fakes_plugin.py"
    plugin.write_text(FAKES)
    out = tmp_path / "study"
    env = {**os.environ, "PROMPTOPT_CACHE_DIR": str(tmp_path / "cache"), "PROMPTOPT_PROGRESS": "0"}
    args = ["--methods", "ape,opro", "--tasks", "fake/yes-no", "--seeds", "0", "--backend", "fake"]
    options = ["-o", "steps=2", "-o", "max_new_tokens=8"]
    done = subprocess.run(
        [sys.executable, "-m", "promptopt", "study", *args, *options,
         "--plugin", str(plugin), "--out", str(out)],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    results = sorted(out.rglob("result.json"))
    methods = {json.loads(p.read_text())["method"] for p in results}
    assert methods == {"ape", "opro"}
    for path in results:
        result = json.loads(path.read_text())
        assert result["steps_run"] == 2 and isinstance(result["best_prompt"], str)
