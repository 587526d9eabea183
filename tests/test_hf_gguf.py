"""GGUF input: dequantized once by transformers, cached as safetensors, reloaded from the cache.

The GGUF is written from the tiny model by the llamacpp plugin's exporter (skipped without it).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from promptopt.errors import ModelLoadError

torch = pytest.importorskip("torch")
pytest.importorskip("gguf")
gguf_export = pytest.importorskip("promptopt_llamacpp.gguf_export")

from promptopt_hf.backend import HFBackend  # noqa: E402


@pytest.fixture
def tiny_gguf(tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PROMPTOPT_CACHE_DIR", str(tmp_path / "cache"))
    return Path(gguf_export.export_hf_llama(tiny_model_dir, tmp_path / "gguf" / "tiny.gguf"))


def test_gguf_converts_once_and_matches_the_source(
    tiny_model_dir: Path, tiny_gguf: Path, tmp_path: Path
) -> None:
    original = HFBackend(str(tiny_model_dir))
    converted = HFBackend(str(tiny_gguf))
    folder = converted.source.folder
    assert folder is not None and folder.parent == tmp_path / "cache" / "models"
    assert (folder / "model.safetensors").is_file()
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]  # no temp leftovers
    assert converted.model_id == str(tiny_gguf.resolve())
    assert getattr(converted.model.config, "quantization_config", None) is None

    text = original.chat("Premises: All dogs are animals.")
    assert converted.encode(text) == original.encode(text)
    ids = torch.tensor([original.encode(text)])
    with torch.no_grad():
        assert torch.allclose(
            converted.model(input_ids=ids).logits, original.model(input_ids=ids).logits, atol=1e-5
        )

    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    again = HFBackend(str(tiny_gguf))
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp
    assert again.fingerprint() == converted.fingerprint()


def test_corrupt_cached_conversion_says_how_to_rebuild(tiny_gguf: Path) -> None:
    folder = HFBackend(str(tiny_gguf)).source.folder
    assert folder is not None
    (folder / "model.safetensors").write_bytes(b"\x00" * 32)
    with pytest.raises(ModelLoadError) as info:
        HFBackend(str(tiny_gguf))
    assert str(folder) in str(info.value.hint) and "delete" in str(info.value.hint)
