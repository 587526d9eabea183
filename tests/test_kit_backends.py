"""Every backend keeps the one Backend contract, checked by the kit's ``check_backend``: the
fake backend, ``hf`` on the tiny random Llama, ``llamacpp`` on its GGUF export and ``openai``
against a real ``llama_cpp.server`` serving that GGUF. What is particular to one backend (its
tokenization, its agreement with transformers, its server handling) stays in its own tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from promptopt.components import Backend
from promptopt.testing.contracts import check_backend


def fake(request: pytest.FixtureRequest) -> tuple[Backend, dict[str, Any]]:
    from promptopt.testing.fakes import FakeBackend

    return FakeBackend(None), {}


def hf(request: pytest.FixtureRequest) -> tuple[Backend, dict[str, Any]]:
    pytest.importorskip("transformers")  # protection only: CI installs it
    from promptopt_hf.backend import HFBackend, HFOptions

    # batches of 2: the check's three questions span a padded and a single-row batch
    backend = HFBackend(str(request.getfixturevalue("tiny_model_dir")), HFOptions(batch_size=2))
    return backend, {}  # white box: encode_input and special_ids give the token view


def llamacpp(request: pytest.FixtureRequest) -> tuple[Backend, dict[str, Any]]:
    pytest.importorskip("llama_cpp")  # protection only: CI installs llama-cpp-python
    from promptopt_llamacpp.backend import LlamaCppBackend

    backend = LlamaCppBackend(str(request.getfixturevalue("tiny_gguf")))
    controls = {
        backend.llm.tokenize(text.encode(), add_bos=False, special=True)[0]
        for text in ("<|im_start|>", "<|im_end|>")
    }
    return backend, {"tokenize": backend.tokenize, "control_ids": controls}


def openai(request: pytest.FixtureRequest) -> tuple[Backend, dict[str, Any]]:
    from llama_server import API_KEY

    server = request.getfixturevalue("tiny_server")
    request.getfixturevalue("monkeypatch").setenv("PROMPTOPT_OPENAI_API_KEY", API_KEY)
    from promptopt_openai.backend import OpenAIBackend

    return OpenAIBackend(server.url), {}


BACKENDS: dict[str, Callable[[pytest.FixtureRequest], tuple[Backend, dict[str, Any]]]] = {
    "fake": fake,
    "hf": hf,
    "llamacpp": llamacpp,
    "openai": openai,
}


@pytest.fixture
def backend_under_test(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Backend, dict[str, Any]]]:
    monkeypatch.setenv("PROMPTOPT_CACHE_DIR", str(tmp_path / "cache"))
    backend, view = BACKENDS[request.param](request)
    yield backend, view
    backend.close()


@pytest.mark.parametrize("backend_under_test", list(BACKENDS), indirect=True)
def test_backend_keeps_the_contract(backend_under_test: tuple[Backend, dict[str, Any]]) -> None:
    backend, view = backend_under_test
    check_backend(backend, **view)


def test_every_in_tree_backend_is_checked() -> None:
    from promptopt.pluginmanager import new_plugin_manager
    from promptopt.registry import Registry

    repo = Path(__file__).resolve().parents[1]
    in_tree = {p.parent.name for p in repo.glob("*/*/pyproject.toml")}
    registrations = Registry.from_plugin_manager(new_plugin_manager()).registrations()
    ours = {r.name for r in registrations if r.kind == "backend" and r.distribution in in_tree}
    assert {"hf", "llamacpp", "openai"} <= ours
    assert ours <= set(BACKENDS), f"no contract check for {ours - set(BACKENDS)}"
