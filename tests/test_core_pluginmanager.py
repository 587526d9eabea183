"""Plugin discovery: entry points, autoload off, load-only, blocking, explicit paths, tracing."""

from __future__ import annotations

from pathlib import Path

import pytest

from promptopt.errors import PromptoptError
from promptopt.pluginmanager import CORE_PLUGIN_NAME, new_plugin_manager
from promptopt.registry import Registry

PATH_PLUGIN = """
import promptopt
from promptopt.reasoners import ChatReasoner


class LongReasoner(ChatReasoner):
    name = "long-chat"


@promptopt.hookimpl
def register_reasoners(register):
    register(LongReasoner)
"""


def test_core_plugin_is_loaded_from_its_entry_point() -> None:
    pm = new_plugin_manager(autoload=True)
    assert pm.has_plugin(CORE_PLUGIN_NAME)
    assert any(dist.project_name == "promptopt" for _, dist in pm.list_plugin_distinfo())


def test_disable_autoload_keeps_only_core(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMPTOPT_DISABLE_PLUGIN_AUTOLOAD", "1")
    pm = new_plugin_manager()
    names = [name for name, _ in pm.list_name_plugin()]
    assert names == [CORE_PLUGIN_NAME]


def test_load_only_named_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMPTOPT_LOAD_PLUGINS", "promptopt-tasks")  # a distribution name
    pm = new_plugin_manager()
    loaded = {name for name, _ in pm.list_name_plugin()}
    assert CORE_PLUGIN_NAME in loaded and len(loaded) == 2
    assert "folio" in Registry.from_plugin_manager(pm).names("task")
    assert "greater" not in Registry.from_plugin_manager(pm).names("method")


def test_load_only_a_name_nothing_is_called(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMPTOPT_LOAD_PLUGINS", "no-such-plugin")
    with pytest.raises(PromptoptError, match="PROMPTOPT_LOAD_PLUGINS names 'no-such-plugin'"):
        new_plugin_manager()


def test_blocking_by_name_removes_components(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMPTOPT_BLOCK_PLUGINS", CORE_PLUGIN_NAME)
    pm = new_plugin_manager()
    assert not pm.has_plugin(CORE_PLUGIN_NAME)
    assert "chat" not in Registry.from_plugin_manager(pm).names("reasoner")


def test_plugin_from_explicit_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "my_reasoners.py"
    file.write_text(PATH_PLUGIN)
    monkeypatch.setenv("PROMPTOPT_PLUGIN_PATHS", str(file))
    registry = Registry.from_plugin_manager(new_plugin_manager(autoload=False))
    assert registry.names("reasoner") == ["chat", "long-chat"]
    assert registry.entries["reasoner"]["long-chat"].plugin == "my_reasoners"


def test_trace_prints_hook_calls(capsys: pytest.CaptureFixture[str]) -> None:
    pm = new_plugin_manager(autoload=False, trace=True)
    Registry.from_plugin_manager(pm)
    pm.hook.register_commands(app=None)
    err = capsys.readouterr().err
    assert "[promptopt trace] register_commands(app)" in err


TYPO_PLUGIN = """
import promptopt


@promptopt.hookimpl
def register_task(register):
    pass
"""


@pytest.mark.parametrize("how", ["--plugin", "PROMPTOPT_PLUGIN_PATHS"])
def test_a_misspelled_hook_is_a_one_line_error_naming_the_closest_hook(
    tmp_path: Path, how: str
) -> None:
    import os
    import subprocess
    import sys

    plugin = tmp_path / "typo.py"
    plugin.write_text(TYPO_PLUGIN)
    env = {**os.environ}
    args = [sys.executable, "-m", "promptopt", "run", "fake", "--task", "x", "--dry-run"]
    if how == "--plugin":
        args += ["--plugin", str(plugin)]
    else:
        env["PROMPTOPT_PLUGIN_PATHS"] = str(plugin)
    proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "'register_task', which is not a promptopt hook" in lines[0]
    assert "did you mean 'register_tasks'?" in lines[0]


VARIANT_PLUGIN = """
import promptopt


class Variants:
    backend = "llamacpp"


@promptopt.hookimpl
def register_model_variants(register):
    register(Variants())
"""


def test_providers_are_found_by_name_and_a_name_registered_twice_is_an_error(
    tmp_path: Path,
) -> None:
    from promptopt.errors import DuplicateComponentError
    from promptopt.pluginmanager import registered_providers
    from promptopt.tokengen import HOOK as TOKEN_HOOK
    from promptopt.variants import HOOK as VARIANT_HOOK

    pm = new_plugin_manager(autoload=True)
    assert list(registered_providers(VARIANT_HOOK, "backend", pm)) == ["llamacpp"]
    assert list(registered_providers(TOKEN_HOOK, "name", pm)) == ["llamacpp"]
    bare = new_plugin_manager(autoload=False)
    assert registered_providers(VARIANT_HOOK, "backend", bare) == {}
    file = tmp_path / "other_variants.py"
    file.write_text(VARIANT_PLUGIN)
    pm = new_plugin_manager(autoload=True, paths=[file])
    with pytest.raises(DuplicateComponentError, match="'llamacpp' is registered twice") as exc:
        registered_providers(VARIANT_HOOK, "backend", pm)
    assert "promptopt-llamacpp" in exc.value.message and "other_variants" in exc.value.message
