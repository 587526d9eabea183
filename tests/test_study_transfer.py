"""``promptopt study --transfer``: a fake study's prompts evaluated again with real llama.cpp on
a Q8_0 quantization of the embedded SmolLM2 and on another GGUF file (the embedded file)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("llama_cpp")

FAKES = "from promptopt.testing.fakes import *  # noqa: F403\n"


@pytest.mark.llamacpp
@pytest.mark.slow
def test_transfer_to_a_quantization_and_another_file(tmp_path: Path) -> None:
    from promptopt_llamacpp.modelfiles import embedded_smollm2

    other = embedded_smollm2()
    plugin = tmp_path / "fakes_plugin.py"
    plugin.write_text(FAKES)
    out = tmp_path / "study"
    command = [sys.executable, "-m", "promptopt", "study", "--methods", "fake", "--tasks"]
    command += ["fake/yes-no", "--seeds", "0,1", "-o", "steps=2", "--plugin", str(plugin)]
    command += ["--transfer", f"q8_0,{other}", "--out", str(out)]
    env = {
        **os.environ,
        "PROMPTOPT_CACHE_DIR": str(tmp_path / "cache"),
        "PROMPTOPT_PROGRESS": "0",
        "OMP_NUM_THREADS": "1",
    }
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert list((tmp_path / "cache" / "gguf").glob("*-q8_0.gguf"))  # quantized on demand
    report = json.loads((out / "report.json").read_text())
    labels = ["q8_0", other.name]
    assert report["evaluation"]["transfer"] == labels
    for run in report["runs"]:
        assert sorted(run["transfer"]) == sorted(labels)
        for entry in run["transfer"].values():
            assert entry["best"]["n"] == entry["initial"]["n"] == 3
            assert entry["best"]["prompt"] == run["best"]["prompt"]
            assert entry["vs_initial"]["n"] == 3
    (test_set,) = report["test_sets"].values()
    assert sorted(test_set["transfer_empty"]) == sorted(labels)
    text = (out / "report.md").read_text()
    assert f"|  | fake (main) | q8_0 | {other.name} |" in text
    first = json.loads((out / "last_invocation.json").read_text())
    assert first["models_loaded"] == 3  # the fake model, the Q8_0 file, the other file

    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    again = json.loads((out / "last_invocation.json").read_text())
    assert again["models_loaded"] == 0 and again["evaluations_computed"] == 0
