"""pytest fixtures for promptopt plugin authors (auto-loaded through the ``pytest11`` entry point).

* ``promptopt_pm``: a fresh plugin manager with the installed plugins, installed as the
  process-wide manager for the test and restored afterwards.
* ``promptopt_register``: register a plugin object for the duration of a test.
* ``promptopt_hook_recorder``: a :class:`~promptopt.testing.recorder.HookRecorder` on that manager.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pluggy
import pytest

from promptopt.testing.recorder import HookRecorder


@pytest.fixture
def promptopt_pm() -> Iterator[pluggy.PluginManager]:
    """A fresh plugin manager used by promptopt for this test only."""
    from promptopt.pluginmanager import new_plugin_manager, set_plugin_manager
    from promptopt.registry import reset_registry

    pm = new_plugin_manager()
    set_plugin_manager(pm)
    reset_registry()
    try:
        yield pm
    finally:
        set_plugin_manager(None)
        reset_registry()


@pytest.fixture
def promptopt_register(promptopt_pm: pluggy.PluginManager) -> Iterator[Callable[..., Any]]:
    """``promptopt_register(plugin, name=None)`` registers a plugin until the test ends."""
    from promptopt.registry import reset_registry

    added: list[object] = []

    def register(plugin: object, name: str | None = None) -> object:
        promptopt_pm.register(plugin, name=name)
        added.append(plugin)
        reset_registry()
        return plugin

    yield register
    for plugin in added:
        if promptopt_pm.is_registered(plugin):
            promptopt_pm.unregister(plugin)
    reset_registry()


@pytest.fixture
def promptopt_hook_recorder(promptopt_pm: pluggy.PluginManager) -> Iterator[HookRecorder]:
    """Records every promptopt hook call made during the test."""
    recorder = HookRecorder(promptopt_pm)
    try:
        yield recorder
    finally:
        recorder.close()
