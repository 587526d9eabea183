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

from promptopt import hookimpl
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
    """What :func:`promptopt_run` returns: the run directory, ``result.json`` (empty for an
    interrupted run) and the logged steps."""

    path: Path
    result: dict[str, Any]
    steps: list[dict[str, Any]]


class _Interrupt:
    """A plugin that stops a run (like Ctrl-C) once step ``after - 1`` is checkpointed."""

    def __init__(self, after: int) -> None:
        self.after = after

    @hookimpl
    def step_end(self, record: Any) -> None:
        if record.step + 1 >= self.after:
            raise KeyboardInterrupt


class LoopRunner:
    """Runs the loop like ``promptopt run`` does, in-process, into ``tmp_path/run-N``."""

    def __init__(self, pm: pluggy.PluginManager, tmp_path: Path) -> None:
        self.pm, self.tmp_path, self.runs = pm, tmp_path, 0

    def __call__(
        self,
        method: str,
        *,
        task: str,
        interrupt_after: int | None = None,
        loaded_backend: Any = None,
        **kwargs: Any,
    ) -> RunOutcome:
        """Run settings (``backend``, ``model``, ``seed``, ``data_dir``) and component
        overrides (``selector``, ...) by name; every other keyword is an ``-o`` option.
        A scoped option is a keyword with ``__`` for the dot (``selector__keep=5``).
        ``interrupt_after=k`` stops the run after k steps, as Ctrl-C would; ``loaded_backend``
        reuses a model already in memory as the task backend."""
        from promptopt.config import RUN_LEVEL_KEYS, make_run_config
        from promptopt.kinds import PRESET_KINDS

        settings: dict[str, Any] = {"method": method, "task": task, "components": {}}
        run_keys = ("backend", "model", "optimizer_backend", "optimizer_model", *RUN_LEVEL_KEYS)
        for key in run_keys:
            if key in kwargs:
                settings[key] = kwargs.pop(key)
        for kind in PRESET_KINDS:
            if kind in kwargs:
                settings["components"][kind] = kwargs.pop(kind)
        settings["options"] = {key.replace("__", "."): value for key, value in kwargs.items()}
        self.runs += 1
        out = self.tmp_path / f"run-{self.runs}"
        if loaded_backend is not None:
            settings.setdefault("backend", loaded_backend.name)
        config = make_run_config({}, settings)
        return self._execute(config, out, None, interrupt_after, loaded_backend)

    def resume(
        self, path: Path, *, interrupt_after: int | None = None, loaded_backend: Any = None
    ) -> RunOutcome:
        """Continue the run in ``path`` from its checkpoint, like ``promptopt run --resume``."""
        from promptopt.config import make_run_config
        from promptopt.rundir import RunDir

        run_dir = RunDir.open(path)
        config = make_run_config(run_dir.read_config(), {})
        return self._execute(config, path, run_dir, interrupt_after, loaded_backend)

    def _execute(
        self,
        config: Any,
        out: Path,
        resume_dir: Any,
        interrupt_after: int | None,
        loaded_backend: Any = None,
    ) -> RunOutcome:
        from promptopt.rundir import RunDir
        from promptopt.runs import resume_run, start_run

        stopper = _Interrupt(interrupt_after) if interrupt_after is not None else None
        if stopper is not None:
            self.pm.register(stopper)
        try:
            if resume_dir is not None:
                done = resume_run(resume_dir, config, progress=False, backend=loaded_backend)
            else:
                done = start_run(config, out=out, progress=False, backend=loaded_backend)
            result = done.to_dict()
        except KeyboardInterrupt:
            result = {}
        finally:
            if stopper is not None:
                self.pm.unregister(stopper)
        return RunOutcome(out, result, RunDir(out).read_steps())


@pytest.fixture
def promptopt_run(promptopt_pm: pluggy.PluginManager, tmp_path: Path) -> LoopRunner:
    """``promptopt_run("fake", task="fake/yes-no", selector="my-selector", steps=2)`` runs the
    loop in-process with the plugins on ``promptopt_pm`` (add yours with
    ``promptopt_register``); ``promptopt_run(..., interrupt_after=1)`` then
    ``promptopt_run.resume(outcome.path)`` tests that a run resumes exactly."""
    return LoopRunner(promptopt_pm, tmp_path)
