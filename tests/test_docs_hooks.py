"""Meta-tests: every hook in the spec is documented with its parameters, and nothing else is."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from promptopt import hookspecs
from promptopt.pluginmanager import new_plugin_manager

DOCS = Path(__file__).resolve().parents[1] / "docs"
#: A hook's section: "### `name(param, ...)`" up to the next heading.
SECTION = re.compile(
    r"^### `(?P<name>\w+)\((?P<params>[^)]*)\)`\n(?P<body>.*?)(?=^#|\Z)", re.M | re.S
)


def spec_hooks() -> dict[str, list[str]]:
    """Hook name -> parameter names, read from the spec module with inspect."""
    return {
        name: list(inspect.signature(func).parameters)
        for name, func in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(func, "promptopt_spec")
    }


def documented_hooks() -> dict[str, tuple[list[str], str]]:
    text = (DOCS / "hooks.md").read_text()
    return {
        m["name"]: ([p.strip() for p in m["params"].split(",") if p.strip()], m["body"])
        for m in SECTION.finditer(text)
    }


def test_the_spec_is_what_the_plugin_manager_uses() -> None:
    pm = new_plugin_manager(autoload=False)
    hooks = {name for name in vars(pm.hook) if not name.startswith("_")}
    assert set(spec_hooks()) == hooks
    assert len(hooks) >= 11


def test_every_hook_is_documented_with_its_parameters() -> None:
    documented = documented_hooks()
    for name, params in spec_hooks().items():
        assert name in documented, f"docs/hooks.md has no section for hook {name}"
        shown, body = documented[name]
        assert shown == params, f"docs/hooks.md shows {name}({', '.join(shown)}), spec: {params}"
        for param in params:
            assert f"- `{param}`:" in body, f"docs/hooks.md does not describe {name}'s {param}"


def test_no_documented_hook_is_missing_from_the_spec() -> None:
    extra = set(documented_hooks()) - set(spec_hooks())
    assert not extra, f"docs/hooks.md documents hooks that do not exist: {sorted(extra)}"


def test_architecture_names_every_discovery_variable_and_run_file() -> None:
    from promptopt import pluginmanager, rundir

    text = (DOCS / "architecture.md").read_text()
    variables = set(re.findall(r"PROMPTOPT_[A-Z_]+", Path(pluginmanager.__file__).read_text()))
    assert len(variables) >= 5
    for variable in variables:
        assert f"`{variable}" in text, f"docs/architecture.md does not explain {variable}"
    for constant in ("CONFIG", "PLUGINS", "LOG", "STEPS", "CHECKPOINT", "RESULT"):
        assert f"`{getattr(rundir, constant)}`" in text


def test_testing_page_names_every_fixture_and_check() -> None:
    from promptopt.testing import contracts, pytest_plugin

    text = (DOCS / "testing.md").read_text()
    fixtures = [
        name
        for name, obj in vars(pytest_plugin).items()
        if name.startswith("promptopt_") and callable(obj)
    ]
    assert len(fixtures) >= 6
    checks = [name for name in vars(contracts) if name.startswith("check_")]
    for name in [*fixtures, *checks]:
        assert f"`{name}" in text, f"docs/testing.md does not mention {name}"
