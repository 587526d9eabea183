"""Build the plugin manager: entry points of the ``promptopt`` group, loaded lazily.

Environment variables (pytest-style):

* ``PROMPTOPT_DISABLE_PLUGIN_AUTOLOAD=1`` loads no entry points except promptopt's own core.
* ``PROMPTOPT_LOAD_PLUGINS=a,b`` loads only the named entry points (or distributions).
* ``PROMPTOPT_BLOCK_PLUGINS=a,b`` blocks the named plugins.
* ``PROMPTOPT_PLUGIN_PATHS=/x/p.py:/y/q.py`` also loads plugins from explicit files.
* ``PROMPTOPT_TRACE_PLUGINS=1`` prints every hook call with its results to stderr.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy
from pluggy._manager import DistFacade

from promptopt import hookspecs
from promptopt.errors import DuplicateComponentError, PromptoptError

ENTRY_POINT_GROUP = "promptopt"
CORE_PLUGIN_NAME = "promptopt-core"

_manager: pluggy.PluginManager | None = None


def _split_env(name: str) -> list[str]:
    return [part.strip() for part in os.environ.get(name, "").split(",") if part.strip()]


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


class PromptoptPluginManager(pluggy.PluginManager):
    """pluggy's manager, plus the distributions of the entry-point plugins promptopt loads
    itself: :meth:`list_plugin_distinfo` lists them like those of pluggy's own loader, without
    writing pluggy's private bookkeeping (whose shape changed between pluggy releases)."""

    def __init__(self) -> None:
        super().__init__("promptopt")
        self._distributions: list[tuple[object, metadata.Distribution]] = []

    def add_distribution(self, plugin: object, dist: metadata.Distribution) -> None:
        """Record that ``plugin`` was loaded from the installed distribution ``dist``."""
        self._distributions.append((plugin, dist))

    def list_plugin_distinfo(self) -> list[tuple[object, DistFacade]]:
        own = [(plugin, DistFacade(dist)) for plugin, dist in self._distributions]
        return [*super().list_plugin_distinfo(), *own]


def new_plugin_manager(
    *,
    autoload: bool | None = None,
    only: Iterable[str] | None = None,
    blocked: Iterable[str] = (),
    paths: Iterable[str | Path] = (),
    trace: bool | None = None,
) -> PromptoptPluginManager:
    """A fresh plugin manager with the hookspecs added and plugins loaded.

    Arguments left as None fall back to the environment variables above; the core plugin is
    always registered (unless blocked) so a bare manager still has the built-in components.
    """
    pm = PromptoptPluginManager()
    pm.add_hookspecs(hookspecs)
    blocked = set(blocked) | set(_split_env("PROMPTOPT_BLOCK_PLUGINS"))
    for name in blocked:
        pm.set_blocked(name)
    if autoload is None:
        autoload = not _env_flag("PROMPTOPT_DISABLE_PLUGIN_AUTOLOAD")
    only_names = set(only) if only is not None else set(_split_env("PROMPTOPT_LOAD_PLUGINS"))

    if autoload:
        _load_entry_points(pm, only_names, blocked)
    if not pm.has_plugin(CORE_PLUGIN_NAME) and CORE_PLUGIN_NAME not in blocked:
        from promptopt import builtin

        pm.register(builtin, name=CORE_PLUGIN_NAME)

    env_paths = [p for p in os.environ.get("PROMPTOPT_PLUGIN_PATHS", "").split(os.pathsep) if p]
    for path in [*paths, *env_paths]:
        register_plugin_file(pm, path)

    if trace if trace is not None else _env_flag("PROMPTOPT_TRACE_PLUGINS"):
        enable_tracing(pm)
    check_hook_names(pm)
    return pm


def check_hook_names(pm: pluggy.PluginManager) -> None:
    """A one-line error for a hook implementation whose name no hookspec has (a typo such as
    ``register_task`` would otherwise do nothing), naming the plugin and the closest hook."""
    import difflib

    known = sorted(n for n in dir(hookspecs) if hasattr(getattr(hookspecs, n), "promptopt_spec"))
    for name, caller in sorted(vars(pm.hook).items()):
        if not isinstance(caller, pluggy.HookCaller) or caller.has_spec():
            continue
        impls = caller.get_hookimpls()
        if not impls:
            continue
        close = difflib.get_close_matches(name, known, n=1)
        raise PromptoptError(
            f"plugin {impls[0].plugin_name!r} implements {name!r}, which is not a promptopt hook",
            hint=(f"did you mean {close[0]!r}? " if close else "") + "see docs/hooks.md",
        )


def _load_entry_points(pm: PromptoptPluginManager, only: set[str], blocked: set[str]) -> None:
    entry_points = list(metadata.entry_points(group=ENTRY_POINT_GROUP))
    known = {ep.name for ep in entry_points} | {ep.dist.name for ep in entry_points if ep.dist}
    unknown = sorted(only - known)
    if unknown:
        raise PromptoptError(
            f"PROMPTOPT_LOAD_PLUGINS names {', '.join(map(repr, unknown))}, which no installed "
            "plugin is called",
            hint=f"use entry-point or distribution names: {', '.join(sorted(known))}",
        )
    for ep in entry_points:
        dist_name = ep.dist.name if ep.dist is not None else ""
        if only and ep.name not in only and dist_name not in only and ep.name != CORE_PLUGIN_NAME:
            continue
        if ep.name in blocked or dist_name in blocked or pm.has_plugin(ep.name):
            continue
        try:
            plugin = ep.load()
        except Exception as exc:  # a broken third-party plugin must not hide the others' names
            raise PromptoptError(
                f"plugin {ep.name!r} from distribution {dist_name!r} failed to import: {exc}",
                hint=f"reinstall or uninstall it, or set PROMPTOPT_BLOCK_PLUGINS={ep.name}",
            ) from exc
        pm.register(plugin, name=ep.name)
        if ep.dist is not None:  # what pluggy's own load_setuptools_entrypoints records
            pm.add_distribution(plugin, ep.dist)


def register_plugin_file(pm: pluggy.PluginManager, path: str | Path) -> ModuleType:
    """Load a plugin module from an explicit file path and register it under its stem."""
    file = Path(path)
    if not file.is_file():
        problem = "is a directory" if file.is_dir() else "does not exist"
        raise PromptoptError(
            f"plugin file {str(file)!r} {problem}", hint="pass the path of a .py file"
        )
    module_name = f"promptopt_path_plugin_{file.stem}"
    spec = importlib.util.spec_from_file_location(module_name, file)
    if spec is None or spec.loader is None:
        raise PromptoptError(f"cannot import plugin file {str(file)!r}", hint="is it Python?")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the user's file: report it in one line, not as our traceback
        del sys.modules[module_name]
        raise PromptoptError(
            f"plugin file {str(file)!r} failed to import: {type(exc).__name__}: {exc}",
            hint="fix the file (run it with python to see the traceback) or drop it",
        ) from exc
    if not pm.has_plugin(file.stem):
        pm.register(module, name=file.stem)
    return module


def enable_tracing(pm: pluggy.PluginManager) -> None:
    """Print each hook call, the implementations it runs and their results to stderr."""

    def before(hook_name: str, hook_impls: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
        names = ", ".join(impl.plugin_name for impl in hook_impls)
        print(f"[promptopt trace] {hook_name}({', '.join(kwargs)}) -> [{names}]", file=sys.stderr)

    def after(
        outcome: Any, hook_name: str, hook_impls: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> None:
        exc = outcome.exception
        shown = f"raised {exc!r}" if exc is not None else f"returned {outcome.get_result()!r}"
        print(f"[promptopt trace] {hook_name} {shown}", file=sys.stderr)

    pm.add_hookcall_monitoring(before, after)


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, created (and entry points imported) on first use."""
    global _manager
    if _manager is None:
        _manager = new_plugin_manager()
    return _manager


def set_plugin_manager(pm: pluggy.PluginManager | None) -> None:
    """Replace the process-wide manager (tests use this; None resets to lazy creation)."""
    global _manager
    _manager = pm


def plugin_distribution(pm: pluggy.PluginManager, plugin: object) -> tuple[str, str]:
    """(distribution name, version) of a registered plugin, or ("", "") for path plugins."""
    for registered, dist in pm.list_plugin_distinfo():
        if registered is plugin:
            return dist.project_name, dist.version
    return "", ""


def load_plugin_files(paths: Sequence[str | Path]) -> None:
    """Register plugin files (``--plugin FILE.py``) on the process-wide manager, check their
    hook names, and rebuild the registry with their components."""
    if not paths:
        return
    from promptopt.registry import reset_registry

    pm = get_plugin_manager()
    for path in paths:
        register_plugin_file(pm, path)
    check_hook_names(pm)
    reset_registry()


def registered_providers(
    hook: str, key: str, pm: pluggy.PluginManager | None = None
) -> dict[str, Any]:
    """What the plugins register through the provider hook ``hook`` (each implementation gets
    ``register`` and calls it once per provider), by each provider's ``key`` attribute; a name
    registered twice is a one-line error naming both plugins' distributions."""
    return {name: found[0] for name, found in provider_registrations(hook, key, pm).items()}


def provider_registrations(
    hook: str, key: str, pm: pluggy.PluginManager | None = None
) -> dict[str, tuple[Any, str, str]]:
    """Like :func:`registered_providers`, with where each provider came from: name ->
    (provider, its distribution or plugin name, the plugin's registered name)."""
    pm = pm or get_plugin_manager()
    found: dict[str, tuple[Any, str, str]] = {}
    for impl in getattr(pm.hook, hook).get_hookimpls():
        source = plugin_distribution(pm, impl.plugin)[0] or impl.plugin_name

        def register(provider: Any, source: str = source, plugin: str = impl.plugin_name) -> None:
            name = str(getattr(provider, key))
            if name in found:
                raise DuplicateComponentError(
                    f"{hook}: {key} {name!r} is registered twice: by {found[name][1]} and by "
                    f"{source}",
                    hint="uninstall one of them or block it with PROMPTOPT_BLOCK_PLUGINS",
                )
            found[name] = (provider, source, plugin)

        impl.function(register=register)
    return dict(sorted(found.items()))
