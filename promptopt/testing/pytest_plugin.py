"""pytest fixtures for promptopt plugin authors (auto-loaded through the ``pytest11`` entry point).

* ``promptopt_pm``: a fresh plugin manager with the installed plugins, installed as the
  process-wide manager for the test and restored afterwards.
* ``promptopt_register``: register a plugin object for the duration of a test.
* ``promptopt_hook_recorder``: a :class:`~promptopt.testing.recorder.HookRecorder` on that manager.
* ``promptopt_fakes``: the fake components of :mod:`promptopt.testing.fakes`, registered.
* ``promptopt_fake_context``: a real :class:`~promptopt.components.StepContext` over the fakes.
* ``promptopt_run``: run the whole loop in-process into a temporary run directory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy
import pytest

from promptopt.testing.recorder import HookRecorder

if TYPE_CHECKING:
    from promptopt.components import StepContext


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


@pytest.fixture
def promptopt_fakes(promptopt_register: Callable[..., Any]) -> Any:
    """Registers the fake backend, task, method, proposer, loss extractor and selector
    (:mod:`promptopt.testing.fakes`) for this test; returns that module."""
    from promptopt.testing import fakes

    promptopt_register(fakes, name="promptopt-fakes")
    return fakes


@pytest.fixture
def promptopt_fake_context() -> StepContext:
    """A real step context over the fakes (fake backend, ``fake/yes-no`` task, chat reasoner)."""
    from promptopt.testing.fakes import fake_context

    return fake_context()


@dataclass(frozen=True)
class RunOutcome:
    """What :func:`promptopt_run` returns: the run directory, ``result.json`` and the steps."""

    path: Path
    result: dict[str, Any]
    steps: list[dict[str, Any]]


@pytest.fixture
def promptopt_run(promptopt_pm: pluggy.PluginManager, tmp_path: Path) -> Callable[..., RunOutcome]:
    """``promptopt_run("fake", task="fake/yes-no", selector="my-selector", steps=2)`` runs the
    loop like ``promptopt run`` does, in-process, with the plugins registered on
    ``promptopt_pm`` (add yours with ``promptopt_register``). Keyword arguments that are not
    run settings become ``-o`` options."""
    from promptopt.cli.run import execute
    from promptopt.config import OVERRIDABLE, make_run_config
    from promptopt.rundir import RunDir

    counter = iter(range(1_000_000))

    def run(method: str, *, task: str, **kwargs: Any) -> RunOutcome:
        settings: dict[str, Any] = {"method": method, "task": task, "components": {}}
        for key in ("backend", "model", "seed", "data_dir"):
            if key in kwargs:
                settings[key] = kwargs.pop(key)
        for kind in OVERRIDABLE:
            if kind in kwargs:
                settings["components"][kind] = kwargs.pop(kind)
        settings["options"] = kwargs
        out = tmp_path / f"run-{next(counter)}"
        result = execute(make_run_config({}, settings), out=out, progress=False)
        return RunOutcome(out, result, RunDir(out).read_steps())

    return run
