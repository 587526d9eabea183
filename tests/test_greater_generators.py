"""GReaTer's choice of generator through the core's token-generator interface: the llamacpp
plugin's provider when it is installed, torch otherwise, and a one-line error when llama.cpp is
asked for and no plugin provides it."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from promptopt.errors import PromptoptError
from promptopt.pluginmanager import new_plugin_manager, set_plugin_manager

CPU_MODEL: Any = SimpleNamespace(device=SimpleNamespace(type="cpu"))


@pytest.fixture
def without_llamacpp() -> Iterator[None]:
    set_plugin_manager(new_plugin_manager(blocked=["promptopt-llamacpp"]))
    yield
    set_plugin_manager(None)


def test_auto_uses_the_llamacpp_provider_when_its_runtime_imports() -> None:
    from promptopt_greater.generators import choose

    from promptopt.tokengen import token_generator_provider

    provider = token_generator_provider("llamacpp")
    assert provider is not None
    runs = importlib.util.find_spec("llama_cpp") is not None
    assert provider.available() == runs
    assert choose("auto", CPU_MODEL, False) == ("llamacpp" if runs else "torch")
    assert choose("auto", CPU_MODEL, True) == "torch"  # reference mode generates in torch
    assert choose("auto", SimpleNamespace(device=SimpleNamespace(type="cuda")), False) == "torch"


def test_without_a_provider_auto_is_torch_and_llamacpp_an_error(without_llamacpp: None) -> None:
    from promptopt_greater.generators import choose, runtime

    from promptopt.tokengen import token_generator_provider

    assert token_generator_provider("llamacpp") is None
    assert choose("auto", CPU_MODEL, False) == "torch"
    with pytest.raises(PromptoptError, match="generator=llamacpp needs a plugin") as exc:
        runtime("llamacpp")
    assert exc.value.hint is not None and "-o generator=torch" in exc.value.hint
