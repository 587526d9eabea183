"""GGUF input: dequantized once by transformers, cached as safetensors, reloaded from the cache.

The GGUF is written from the tiny model by the llamacpp plugin's exporter (skipped without it).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from promptopt.errors import ModelLoadError

torch = pytest.importorskip("torch")
pytest.importorskip("gguf")

from promptopt_hf.backend import HFBackend  # noqa: E402
from promptopt_llamacpp import gguf_export  # noqa: E402


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


def test_replaced_gguf_of_the_same_size_is_converted_again(tiny_gguf: Path, tmp_path: Path) -> None:
    """The conversion cache is keyed on the file's content: a GGUF replaced by another of the
    same name and size (other weights) must not be served from the stale conversion."""
    from promptopt.testing.tiny_model import build_tiny_model

    first = HFBackend(str(tiny_gguf))
    fingerprint = first.fingerprint()
    other_dir = build_tiny_model(tmp_path / "other", seed=1)
    other = Path(gguf_export.export_hf_llama(other_dir, tmp_path / "other.gguf"))
    assert other.stat().st_size == tiny_gguf.stat().st_size
    assert other.read_bytes() != tiny_gguf.read_bytes()
    other.replace(tiny_gguf)

    again = HFBackend(str(tiny_gguf))
    reference = HFBackend(str(other_dir))
    ids = torch.tensor([reference.encode(reference.chat("All dogs are animals."))])
    with torch.no_grad():
        expected = reference.model(input_ids=ids).logits
        assert not torch.allclose(first.model(input_ids=ids).logits, expected, atol=1e-3)
        assert torch.allclose(again.model(input_ids=ids).logits, expected, atol=1e-5)
    assert again.fingerprint() != fingerprint


def test_source_hash_is_memoized_by_path_size_and_mtime(tiny_gguf: Path, tmp_path: Path) -> None:
    """Reloading does not re-read the file: the hash is kept under the cache folder by (path,
    size, mtime_ns); touching the file (a new mtime) hashes it again."""
    import hashlib
    import json
    import os

    from promptopt.filehash import _MEMO, file_sha256

    digest = hashlib.sha256(tiny_gguf.read_bytes()).hexdigest()
    assert file_sha256(tiny_gguf) == digest
    memos = list((tmp_path / "cache" / "hashes").glob("*.json"))
    assert len(memos) == 1 and json.loads(memos[0].read_text())["sha256"] == digest
    # another process (empty in-memory memo) reads the stored value instead of hashing
    _MEMO.clear()
    record = json.loads(memos[0].read_text())
    memos[0].write_text(json.dumps({**record, "sha256": "f" * 64}))
    assert file_sha256(tiny_gguf) == "f" * 64
    stat = tiny_gguf.stat()
    os.utime(tiny_gguf, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert file_sha256(tiny_gguf) == digest
