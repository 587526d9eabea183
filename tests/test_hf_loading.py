"""hf backend: model references, user-facing load errors, options and plugin registration."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from promptopt.errors import ModelLoadError

pytest.importorskip("torch")
pytest.importorskip("transformers")

from promptopt_hf.backend import HFBackend, HFOptions
from promptopt_hf.resolve import resolve_model


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cache"
    monkeypatch.setenv("PROMPTOPT_CACHE_DIR", str(path))
    return path


def test_registered_under_hf_by_entry_point(promptopt_pm: object) -> None:
    from promptopt.registry import Registry

    registry = Registry.from_plugin_manager()
    assert registry.get("backend", "hf") is HFBackend
    (reg,) = [r for r in registry.registrations() if r.kind == "backend" and r.name == "hf"]
    assert reg.distribution == "promptopt-hf"


def test_entry_point_module_imports_no_torch() -> None:
    code = (
        "import sys, promptopt_hf.plugin; "
        "print(any(m in sys.modules for m in ('torch', 'transformers')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_options_defaults_and_validation() -> None:
    opts = HFOptions()
    assert (opts.dtype, opts.device, opts.trust_remote_code, opts.batch_size, opts.seed) == (
        "auto",
        "auto",
        False,
        8,
        0,
    )
    assert HFOptions(device="cuda:1").device == "cuda:1"
    for bad in ({"device": "gpu"}, {"dtype": "int8"}, {"batch_size": 0}, {"temperature": 1.0}):
        with pytest.raises(ValidationError):
            HFOptions(**bad)


def test_explicit_dtype_is_used(tiny_model_dir: Path) -> None:
    import torch

    backend = HFBackend(str(tiny_model_dir), HFOptions(dtype="bfloat16", device="cpu"))
    assert backend.dtype == torch.bfloat16
    assert backend.embedding_matrix.dtype == torch.bfloat16
    assert backend.fingerprint()["dtype"] == "bfloat16"


def test_missing_cuda_device_is_a_clear_error(tiny_model_dir: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    with pytest.raises(ModelLoadError, match="CUDA is not available") as info:
        HFBackend(str(tiny_model_dir), HFOptions(device="cuda"))
    assert "device=cpu" in str(info.value.hint)


def test_hub_id_offline_is_not_cached_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert resolve_model("no-such-org/no-such-model-xyz").hub_id == "no-such-org/no-such-model-xyz"
    with pytest.raises(ModelLoadError) as info:
        HFBackend("no-such-org/no-such-model-xyz")
    message = str(info.value)
    assert "no-such-org/no-such-model-xyz" in message and "nor cached" in message
    assert "HF_HUB_OFFLINE" in str(info.value.hint)
    assert "\n" not in message


def test_missing_paths_are_named(tmp_path: Path) -> None:
    for ref in (str(tmp_path / "nope"), "./nope-dir", str(tmp_path / "model.gguf")):
        with pytest.raises(ModelLoadError) as info:
            HFBackend(ref)
        assert Path(ref).name in str(info.value) and info.value.hint


def test_folder_without_safetensors_is_refused(tiny_model_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "pickled"
    shutil.copytree(tiny_model_dir, folder)
    for weights in folder.glob("*.safetensors"):
        weights.rename(weights.with_suffix(".bin"))
    with pytest.raises(ModelLoadError, match=r"no \*\.safetensors") as info:
        HFBackend(str(folder))
    assert "refused" in str(info.value) and "safe_serialization" in str(info.value.hint)


def test_folder_without_config_is_refused(tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(ModelLoadError, match=r"no config\.json"):
        HFBackend(str(tmp_path))
    with pytest.raises(ModelLoadError, match=r"not a \.gguf"):
        HFBackend(str(tmp_path / "x.txt"))


def test_corrupt_weights_name_the_folder(tiny_model_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "corrupt"
    shutil.copytree(tiny_model_dir, folder)
    (weights,) = folder.glob("*.safetensors")
    weights.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelLoadError) as info:
        HFBackend(str(folder))
    assert str(folder) in str(info.value)
    assert "\n" not in str(info.value)


def test_corrupt_gguf_leaves_no_cache(tmp_path: Path, cache_dir: Path) -> None:
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\x00" * 1000)
    with pytest.raises(ModelLoadError) as info:
        HFBackend(str(bad))
    assert str(bad) in str(info.value)
    leftovers = list((cache_dir / "models").iterdir()) if (cache_dir / "models").exists() else []
    assert leftovers == []


def test_fingerprint_tracks_weight_content(tiny_model_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "copy"
    shutil.copytree(tiny_model_dir, folder)
    first = HFBackend(str(folder)).fingerprint()
    assert first["backend"] == "hf" and first["model"] == str(folder.resolve())
    config = json.loads((folder / "config.json").read_text())
    from promptopt.testing.tiny_model import build_tiny_model

    build_tiny_model(folder, seed=1)  # same shapes, different weights
    assert json.loads((folder / "config.json").read_text()) == config
    second = HFBackend(str(folder)).fingerprint()
    assert second["weights"] != first["weights"]
    assert {k: v for k, v in second.items() if k != "weights"} == {
        k: v for k, v in first.items() if k != "weights"
    }


def test_chat_template_required_but_missing(tiny_model_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "base"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "chat_template.jinja").unlink(missing_ok=True)  # transformers >= 4.47
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="no chat template") as info:
        HFBackend(str(folder), HFOptions(template="chat"))
    assert "template=plain" in str(info.value.hint)
    assert HFBackend(str(folder)).chat("hi") == "hi\n"  # auto falls back to plain


def test_stale_conversion_leftovers_are_removed(tmp_path: Path, cache_dir: Path) -> None:
    import os

    models = cache_dir / "models"
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\x00" * 1000)
    from promptopt_hf.convert import converted_folder

    name = "broken-test"
    old, fresh = models / f".{name}.tmp-old", models / f".{name}.tmp-fresh"
    for leftover in (old, fresh):
        leftover.mkdir(parents=True)
        (leftover / "model.safetensors").write_bytes(b"partial")
    os.utime(old, (0, 0))
    with pytest.raises(ModelLoadError):
        converted_folder(bad, name)
    assert not old.exists()  # a crashed conversion from long ago
    assert fresh.exists()  # may belong to a conversion still running
    assert not (models / name).exists()


def test_model_with_its_own_code_names_trust_remote_code_and_the_risk(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    """A folder whose config maps classes to its own Python files is refused by transformers
    (trust_remote_code off); the hint says how to allow it and what that risks."""
    import json
    import shutil

    folder = tmp_path / "custom"
    shutil.copytree(tiny_model_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(
        model_type="mycustom",
        architectures=["MyModel"],
        auto_map={
            "AutoConfig": "configuration_my.MyConfig",
            "AutoModelForCausalLM": "modeling_my.MyModel",
        },
    )
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "configuration_my.py").write_text(
        "from transformers import LlamaConfig\n\n\nclass MyConfig(LlamaConfig):\n"
        "    model_type = 'mycustom'\n"
    )
    with pytest.raises(ModelLoadError) as info:
        HFBackend(str(folder))
    hint = str(info.value.hint)
    assert "-o trust_remote_code=true" in hint and "trust" in hint.replace("trust_remote", "")
    assert "its own code" in info.value.message and "\n" not in str(info.value)
