"""Collect component classes from the registration hooks and resolve them by name."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

import pluggy

from promptopt.components import Backend, Component, Method, Task
from promptopt.errors import DuplicateComponentError, PromptoptError, UnknownComponentError
from promptopt.kinds import COMPONENT_KINDS, KINDS
from promptopt.pluginmanager import get_plugin_manager, plugin_distribution
from promptopt.types import DATA_FILE_SUFFIXES


def not_a(cls: type[Component], base: type[Component]) -> TypeError:
    """The error for a class found where a subclass of ``base`` belongs: the registry checks
    every class it adds, so this is a bug, not a user error."""
    return TypeError(f"{cls.__name__} does not subclass {base.__name__}")


@dataclass(frozen=True)
class Registration:
    """One registered component class and where it came from."""

    kind: str
    name: str
    cls: type[Component]
    plugin: str
    distribution: str
    version: str


@dataclass
class Registry:
    """All registered components, by kind and name; task references that are not names (data
    files, hub datasets) are resolved through ``pm``'s ``resolve_task`` hook."""

    entries: dict[str, dict[str, Registration]] = field(
        default_factory=lambda: {kind: {} for kind in COMPONENT_KINDS}
    )
    pm: pluggy.PluginManager | None = None

    @classmethod
    def from_plugin_manager(cls, pm: pluggy.PluginManager | None = None) -> Registry:
        """Call every registration hook implementation, one plugin at a time, so each
        component is attributed to the distribution that registered it."""
        pm = pm or get_plugin_manager()
        registry = cls(pm=pm)
        for kind, spec in KINDS.items():
            hook = getattr(pm.hook, spec.hook)
            for impl in hook.get_hookimpls():
                dist, version = plugin_distribution(pm, impl.plugin)
                registry._call_impl(kind, impl, dist, version)
        return registry

    def _call_impl(self, kind: str, impl: pluggy.HookImpl, dist: str, version: str) -> None:
        def register(component: type[Component]) -> None:
            self.add(kind, component, plugin=impl.plugin_name, distribution=dist, version=version)

        impl.function(register=register)

    def add(
        self,
        kind: str,
        component: type[Component],
        *,
        plugin: str = "",
        distribution: str = "",
        version: str = "",
    ) -> None:
        """Add one class; fails loudly on a wrong base class, a missing name or a duplicate."""
        base = KINDS[kind].base
        if not (isinstance(component, type) and issubclass(component, base)):
            raise PromptoptError(
                f"plugin {plugin!r} registered {component!r} as a {kind}, but it does not "
                f"subclass promptopt.components.{base.__name__}",
                hint="fix the plugin's registration hook",
            )
        name = component.name
        if not name:
            raise PromptoptError(
                f"plugin {plugin!r} registered {component.__name__} without a name",
                hint="set the class attribute `name`",
            )
        existing = self.entries[kind].get(name)
        if existing is not None:
            first = existing.distribution or existing.plugin
            raise DuplicateComponentError(
                f"{kind} {name!r} is registered twice: by {first}"
                f" ({existing.cls.__module__}.{existing.cls.__name__}) and by "
                f"{distribution or plugin} ({component.__module__}.{component.__name__})",
                hint="uninstall one of them or block it with PROMPTOPT_BLOCK_PLUGINS",
            )
        self.entries[kind][name] = Registration(
            kind, name, component, plugin, distribution, version
        )

    def names(self, kind: str) -> list[str]:
        return sorted(self.entries[kind])

    def get(self, kind: str, name: str, *, flag: str | None = None) -> type[Component]:
        """The class registered as ``name``; an unknown name lists the available ones and
        names ``flag`` (default: the kind's own flag, e.g. ``--backend``)."""
        try:
            return self.entries[kind][name].cls
        except KeyError:
            raise self._unknown(kind, name, flag) from None

    def _unknown(
        self, kind: str, name: str, flag: str | None, also: str = ""
    ) -> UnknownComponentError:
        """The error for a name nobody registered: the closest name and the available ones."""
        available = self.names(kind)
        close = difflib.get_close_matches(name, available, n=1)
        suggestion = f"did you mean {close[0]!r}? " if close else ""
        return UnknownComponentError(
            f"unknown {kind.replace('_', ' ')} {name!r} for {flag or KINDS[kind].flag}{also}",
            hint=f"{suggestion}available: {', '.join(available) or 'none installed'}",
        )

    def task(self, name: str) -> type[Task]:
        """The task class registered as ``name``; else the class a plugin makes for it through
        the ``resolve_task`` hook (a data file, a hub dataset); else the unknown-task error."""
        if name in self.entries["task"]:
            cls = self.get("task", name)
            if issubclass(cls, Task):
                return cls
            raise not_a(cls, Task)
        resolved = self.resolve_task(name)
        if resolved is not None:
            return resolved
        suffixes = ", ".join(DATA_FILE_SUFFIXES[:-1]) + f" or {DATA_FILE_SUFFIXES[-1]}"
        raise self._unknown("task", name, None, f"; data files end in {suffixes}")

    def resolve_task(self, ref: str) -> type[Task] | None:
        """The class the plugins' ``resolve_task`` hook makes for ``ref``, or None when no
        plugin claims it. A plugin's one-line error (a missing file) propagates; two plugins
        claiming the same reference is an error naming both."""
        if self.pm is None:
            return None
        found = [cls for cls in self.pm.hook.resolve_task(ref=ref) if cls is not None]
        for cls in found:
            if not (isinstance(cls, type) and issubclass(cls, Task)) or cls.name != ref:
                raise PromptoptError(
                    f"a resolve_task hook returned {cls!r} for {ref!r}, not a Task subclass "
                    "named by that reference",
                    hint="fix that plugin's resolve_task hook",
                )
        if len(found) > 1:
            makers = ", ".join(f"{cls.__module__}.{cls.__name__}" for cls in found)
            raise DuplicateComponentError(
                f"task {ref!r} is claimed by several plugins: {makers}",
                hint="uninstall one of them or block it with PROMPTOPT_BLOCK_PLUGINS",
            )
        return found[0] if found else None

    def backend(self, name: str, *, flag: str | None = None) -> type[Backend]:
        """The backend class registered as ``name`` (see :meth:`get`)."""
        cls = self.get("backend", name, flag=flag)
        if issubclass(cls, Backend):
            return cls
        raise not_a(cls, Backend)

    def method(self, name: str) -> type[Method]:
        """The method class registered as ``name`` (see :meth:`get`)."""
        cls = self.get("method", name)
        if issubclass(cls, Method):
            return cls
        raise not_a(cls, Method)

    def registrations(self) -> list[Registration]:
        return [reg for kind in COMPONENT_KINDS for reg in self.entries[kind].values()]


_registry: Registry | None = None


def get_registry() -> Registry:
    """The registry of the process-wide plugin manager, built on first use."""
    global _registry
    if _registry is None:
        _registry = Registry.from_plugin_manager()
    return _registry


def reset_registry() -> None:
    """Forget the cached registry (after plugins change)."""
    global _registry
    _registry = None


def plugin_rows() -> list[dict[str, Any]]:
    """One row per registered plugin: distribution, version, hooks and components (metrics
    included, as kind ``metric``)."""
    from promptopt.metrics import metric_sources

    pm = get_plugin_manager()
    registry = get_registry()
    metrics = metric_sources(pm)
    rows = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda item: item[0]):
        if plugin is None:
            continue
        dist, version = plugin_distribution(pm, plugin)
        hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or [])
        components = [
            {"kind": reg.kind, "name": reg.name}
            for reg in registry.registrations()
            if reg.plugin == name
        ]
        components += [
            {"kind": "metric", "name": metric}
            for metric, plugin_name in metrics.items()
            if plugin_name == name
        ]
        rows.append(
            {
                "name": name,
                "distribution": dist,
                "version": version,
                "hooks": hooks,
                "components": components,
            }
        )
    return rows
