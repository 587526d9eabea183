"""GGUF files whose chat template is broken (a Jinja syntax error, a sandbox violation): a
one-line error naming the file and suggesting ``-o template=plain``, and ``plain`` works, on the
llamacpp and the hf backend. The files are written by our GGUF exporter (the gguf package)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from promptopt.errors import PromptoptError

pytest.importorskip("llama_cpp")  # protection only: CI installs llama-cpp-python

from promptopt_llamacpp.backend import LlamaCppBackend
from promptopt_llamacpp.gguf_export import export_hf_llama

BROKEN = {
    "syntax": "{% for m in messages %}{{ m['content'] }",
    "sandbox": "{{ ''.__class__.__mro__ }}{% for m in messages %}{{ m['content'] }}{% endfor %}",
}


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMPTOPT_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module", params=sorted(BROKEN))
def broken_gguf(
    request: pytest.FixtureRequest, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The tiny model as a GGUF whose ``tokenizer.chat_template`` is broken."""
    root = tmp_path_factory.mktemp(f"broken-{request.param}")
    folder = root / "model"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "chat_template.jinja").unlink(missing_ok=True)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config["chat_template"] = BROKEN[request.param]
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    return export_hf_llama(folder, root / f"{request.param}.gguf")


def test_llamacpp_broken_template_is_one_line_naming_the_file(broken_gguf: Path) -> None:
    with pytest.raises(PromptoptError) as info:
        LlamaCppBackend(str(broken_gguf))
    assert broken_gguf.name in info.value.message and "chat template" in info.value.message
    assert "-o template=plain" in str(info.value.hint) and "\n" not in str(info.value)


def test_llamacpp_plain_template_gets_past_a_broken_one(broken_gguf: Path) -> None:
    backend = LlamaCppBackend(str(broken_gguf), LlamaCppBackend.Options(template="plain"))
    text = backend.chat("Is 2 + 2 = 4?")
    assert text == "Is 2 + 2 = 4?\n"
    assert len(backend.generate([text], max_new_tokens=3)) == 1
    backend.close()


def test_hf_broken_template_is_one_line_and_plain_works(broken_gguf: Path) -> None:
    pytest.importorskip("transformers")
    from promptopt_hf.backend import HFBackend, HFOptions

    with pytest.raises(PromptoptError) as info:
        HFBackend(str(broken_gguf))
    assert broken_gguf.name in info.value.message and "chat template" in info.value.message
    assert "-o template=plain" in str(info.value.hint) and "\n" not in str(info.value)
    plain = HFBackend(str(broken_gguf), HFOptions(template="plain"))
    assert plain.chat("Is 2 + 2 = 4?") == "Is 2 + 2 = 4?\n"
    assert len(plain.generate([plain.chat("hi")], max_new_tokens=3)) == 1


def test_eval_cli_with_a_broken_template(
    broken_gguf: Path, shared_data_dir: Path, tmp_path: Path
) -> None:
    args = [
        sys.executable,
        "-m",
        "promptopt",
        "eval",
        "--backend",
        "llamacpp",
        "--model",
        str(broken_gguf),
        "--task",
        "bbh/boolean_expressions",
        "--limit",
        "1",
        "--max-new-tokens",
        "4",
        "--data-dir",
        str(shared_data_dir),
        "--prompt",
        "Think.",
        "--no-cache",
    ]
    env = {**os.environ, "PROMPTOPT_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "-o template=plain" in lines[0], proc.stderr
    plain = subprocess.run(
        [*args, "-o", "template=plain"], capture_output=True, text=True, env=env, timeout=300
    )
    assert plain.returncode == 0, plain.stderr
    assert json.loads(plain.stdout)["n"] == 1
