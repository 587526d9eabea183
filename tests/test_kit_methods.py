"""Every installed method keeps the Method contract, checked by the kit's ``check_method``: a
short run with the method's own components, then the same run interrupted after a step and
resumed to the same steps and result. Black-box methods run on the fake model and task;
gradient methods on the hf backend with the tiny random Llama."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from promptopt.testing.contracts import check_method

#: Method name -> how to check it: "fake" (the fake backend and task) or "hf" (tiny Llama).
METHODS = {
    "fake": "fake",
    "gpo": "fake",
    "gpo-small": "fake",
    "ape": "fake",
    "opro": "fake",
    "evoprompt-ga": "fake",
    "evoprompt-de": "fake",
    "greater": "hf",
    "greater-ce": "hf",
    "greater-small": "hf",
}
#: Small settings per method (``-o`` options).
OPTIONS: dict[str, dict[str, Any]] = {
    "gpo": {"samples": 2, "max_new_tokens": 8, "optimizer_max_tokens": 16},
    "gpo-small": {"samples": 2, "max_new_tokens": 8, "optimizer_max_tokens": 16},
    "ape": {"subsamples": 1, "prompts_per_subsample": 2, "max_new_tokens": 8},
    "opro": {"samples": 2, "max_new_tokens": 8, "optimizer_max_tokens": 16},
    "evoprompt-ga": {"popsize": 4, "manual_count": 4, "max_new_tokens": 8},
    "evoprompt-de": {"popsize": 4, "manual_count": 4, "max_new_tokens": 8},
    "greater": {"train_size": 2, "dev_size": 2, "max_new_tokens": 8, "generator": "torch"},
    "greater-ce": {"train_size": 2, "dev_size": 2, "max_new_tokens": 8, "generator": "torch"},
    "greater-small": {"train_size": 2, "dev_size": 2, "max_new_tokens": 8, "generator": "torch"},
}


REPO = Path(__file__).resolve().parents[1]
#: The distributions of this repository (third-party plugins installed beside them check
#: themselves).
IN_TREE = {
    "promptopt",
    "promptopt-fakes",
    *(p.parent.name for p in REPO.glob("*/*/pyproject.toml")),
}


def installed_methods() -> dict[str, Any]:
    """The methods of this repository's plugins and the kit's fake one, by name."""
    from promptopt.pluginmanager import new_plugin_manager
    from promptopt.registry import Registry
    from promptopt.testing import fakes

    pm = new_plugin_manager()
    pm.register(fakes, name="promptopt-fakes")
    registrations = Registry.from_plugin_manager(pm).registrations()
    return {
        r.name: r.cls
        for r in registrations
        if r.kind == "method" and (r.distribution or r.plugin) in IN_TREE
    }


@pytest.mark.parametrize("name", list(METHODS))
def test_method_keeps_the_contract(
    name: str, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROMPTOPT_CACHE_DIR", str(tmp_path / "cache"))
    method = installed_methods()[name]
    if METHODS[name] == "fake":
        check_method(method, options=OPTIONS.get(name))
        return
    pytest.importorskip("transformers")  # protection only: CI installs it
    from promptopt_hf.backend import HFBackend

    backend = HFBackend(str(request.getfixturevalue("tiny_model_dir")))
    check_method(
        method,
        task="bbh/boolean_expressions",
        backend=backend,
        data_dir=str(request.getfixturevalue("shared_data_dir")),
        options=OPTIONS[name],
    )


def test_every_installed_method_is_checked() -> None:
    unchecked = set(installed_methods()) - set(METHODS)
    assert not unchecked, f"no contract check for methods {sorted(unchecked)}"
