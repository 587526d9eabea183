"""The hf backend checks input lengths against the model's context before generating or
scoring (a one-line error), and never generates past it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from promptopt.errors import PromptoptError

pytest.importorskip("torch")
pytest.importorskip("transformers")

from promptopt_hf.backend import HFBackend

CONTEXT = 48


@pytest.fixture(scope="module")
def short_model(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with a 48-position context."""
    folder = tmp_path_factory.mktemp("short") / "model"
    shutil.copytree(tiny_model_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config["max_position_embeddings"] = CONTEXT
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_context_is_the_smaller_real_limit(short_model: Path, tmp_path: Path) -> None:
    assert HFBackend(str(short_model)).context_length == CONTEXT
    folder = tmp_path / "model"
    shutil.copytree(short_model, folder)
    tok_config = json.loads((folder / "tokenizer_config.json").read_text())
    tok_config["model_max_length"] = 32
    (folder / "tokenizer_config.json").write_text(json.dumps(tok_config))
    assert HFBackend(str(folder)).context_length == 32
    tok_config["model_max_length"] = int(1e30)  # transformers' "not set"
    (folder / "tokenizer_config.json").write_text(json.dumps(tok_config))
    assert HFBackend(str(folder)).context_length == CONTEXT


def test_too_long_inputs_fail_before_any_model_call(short_model: Path) -> None:
    backend = HFBackend(str(short_model))
    long_text = backend.chat("All dogs are animals. " * 20)
    assert len(backend.encode_input(long_text)) > CONTEXT
    with pytest.raises(PromptoptError) as info:
        backend.generate([backend.chat("hi"), long_text], max_new_tokens=4)
    assert f"{CONTEXT}-token context" in info.value.message and "\n" not in str(info.value)
    with pytest.raises(PromptoptError):
        backend.continuation_logprobs(long_text, [" True", " False"])
    assert backend.usage.forward_passes == 0


def test_generation_stops_at_the_context(short_model: Path) -> None:
    backend = HFBackend(str(short_model))
    text = backend.chat("hi")
    ids = backend.encode_input(text)
    new = backend.generate_ids([text], max_new_tokens=200)[0]
    assert len(ids) + len(new) <= CONTEXT


def test_eval_of_a_prompt_longer_than_the_context_is_one_line(
    short_model: Path, shared_data_dir: Path, tmp_path: Path
) -> None:
    env = {**os.environ, "PROMPTOPT_CACHE_DIR": str(tmp_path / "cache")}
    start = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "promptopt",
            "eval",
            "--backend",
            "hf",
            "--model",
            str(short_model),
            "--task",
            "bbh/navigate",
            "--limit",
            "1",
            "--max-new-tokens",
            "4",
            "--data-dir",
            str(shared_data_dir),
            "--prompt",
            "Think. " * 100,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 2, (proc.returncode, proc.stderr, time.perf_counter() - start)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "context" in lines[0] and "Traceback" not in proc.stderr
