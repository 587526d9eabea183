"""Option routing: which component each ``-o key=value`` reaches, and where every value came from.

A key can be scoped to one component (``-o selector.keep=5``, ``-o backend.batch_size=4``,
``-o optimizer.n_ctx=8192``). A bare key goes to the one chosen component that declares it; when
several declare it, it is an error naming them, unless the method lists the key in its
``shared_options`` (then it goes to each listed component). Method defaults apply only to the
method's own choice for a kind, so they never leak into a component that replaces it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from promptopt.components import Component, ComponentOptions, Method
from promptopt.errors import PromptoptError


@dataclass(frozen=True)
class Setting:
    """One option value and its source: ``default`` (the component's own), ``method`` (the
    method preset), ``run`` (``--seed``/``--data-dir``) or ``user`` (``-o`` or the config
    file)."""

    value: Any
    source: str


def option_fields(cls: type[Component]) -> set[str]:
    """The option names a component class declares."""
    return set(cls.Options.model_fields)


def _describe(scope: str, cls: type[Component]) -> str:
    return f"{scope.replace('_', ' ')} {cls.name!r}"


def route_options(
    classes: Mapping[str, type[Component]],
    user: Mapping[str, Any],
    *,
    method: type[Method] | None = None,
    own: Mapping[str, bool] | None = None,
    run_level: Mapping[str, Any] | None = None,
) -> dict[str, dict[str, Setting]]:
    """The explicit settings of every scope (``classes`` maps scope -> chosen class; ``own``
    says which scopes hold the method's own choice). Unknown keys, unknown scopes and bare keys
    with several takers are one-line errors. Every command routes its ``-o`` options here:
    ``run`` and ``study`` with their method, ``eval`` and ``transfer`` without one. A key may
    carry a method prefix (``greater:steps=2``): it must name ``method``."""
    own = own or {}
    settings: dict[str, dict[str, Setting]] = {scope: {} for scope in classes}
    if method is not None:
        for scope, values in method.defaults.items():
            if scope in classes and (own.get(scope, False) or scope == "task"):
                for key, value in values.items():
                    if key in option_fields(classes[scope]):
                        settings[scope][key] = Setting(value, "method")
    for key, value in (run_level or {}).items():
        for scope, cls in classes.items():
            if key in option_fields(cls):
                settings[scope][key] = Setting(value, "run")
    for raw, value in user.items():
        key = _without_method_prefix(raw, method)
        for scope in _targets(key, classes, method):
            settings[scope][key.rpartition(".")[2]] = Setting(value, "user")
    return settings


def _without_method_prefix(key: str, method: type[Method] | None) -> str:
    """``greater:steps`` -> ``steps`` when the run's method is ``greater``; another method's
    prefix (or one on a command without a method) is an error."""
    owner, colon, rest = key.partition(":")
    if not colon:
        return key
    if method is None or owner != method.name:
        where = f"method {method.name!r}" if method is not None else "this command"
        raise PromptoptError(
            f"option {key!r} is for method {owner!r}, not {where}",
            hint=f"drop the prefix: -o {rest}=...",
        )
    return rest


def for_method(options: Mapping[str, Any], method: str) -> dict[str, Any]:
    """A study's ``-o`` options for one method's runs: unprefixed keys apply to every method,
    ``METHOD:key`` keys only to that method's runs (prefix kept off; the run's router checks
    the rest exactly as for ``promptopt run``)."""
    mine: dict[str, Any] = {}
    for key, value in options.items():
        owner, colon, rest = key.partition(":")
        if not colon:
            mine.setdefault(key, value)
        elif owner == method:
            mine[rest] = value
    return mine


def build_command_options(
    classes: Mapping[str, type[Component]],
    user: Mapping[str, Any],
    run_level: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The options of the components a command builds itself (``eval``, ``transfer``: a task
    and a backend), routed exactly as a run routes them: ``backend.n_ctx=2048`` reaches the
    backend, a bare key the one component declaring it, a key declared by several is an error
    asking for a scope; ``--seed``/``--data-dir`` values reach every component declaring them."""
    settings = route_options(classes, user, run_level=run_level)
    return {scope: make_options(cls, settings[scope], scope) for scope, cls in classes.items()}


def _targets(
    key: str, classes: Mapping[str, type[Component]], method: type[Method] | None
) -> list[str]:
    """The scopes a user key reaches."""
    scope, dot, name = key.rpartition(".")
    if dot:
        if scope not in classes:
            raise PromptoptError(
                f"option {key!r} names no component of this run ({scope!r})",
                hint=f"scopes of this run: {', '.join(classes)}",
            )
        if name not in option_fields(classes[scope]):
            known = ", ".join(sorted(option_fields(classes[scope]))) or "none"
            raise PromptoptError(
                f"option {name!r} is not an option of {_describe(scope, classes[scope])}",
                hint=f"its options: {known}",
            )
        return [scope]
    shared = [s for s in (method.shared_options if method else {}).get(key, ()) if s in classes]
    shared = [s for s in shared if key in option_fields(classes[s])]
    if shared:
        return shared
    takers = [scope for scope, cls in classes.items() if key in option_fields(cls)]
    if not takers:
        names_known = sorted({k for cls in classes.values() for k in option_fields(cls)})
        raise PromptoptError(
            f"unknown option {key!r}", hint=f"options of this run: {', '.join(names_known)}"
        )
    if len(takers) > 1:
        names = ", ".join(_describe(scope, classes[scope]) for scope in takers)
        raise PromptoptError(
            f"option {key!r} is declared by several components: {names}",
            hint=f"scope it, e.g. -o {takers[0]}.{key}=...",
        )
    return takers


def make_options(cls: type[Component], settings: Mapping[str, Setting], scope: str) -> Any:
    """``cls.Options`` from explicit settings; a bad value names the key and its scope."""
    values = {key: setting.value for key, setting in settings.items()}
    try:
        return cls.Options(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        raise PromptoptError(
            f"option {scope}.{key}={values.get(key)!r} for {_describe(scope, cls)}: {first['msg']}",
            hint=f"pass a valid value with -o {key}=...",
        ) from exc


def options_table(
    cls: type[Component], options: ComponentOptions, settings: Mapping[str, Setting]
) -> dict[str, dict[str, Any]]:
    """Every option of a built component with its value and source (for ``--dry-run``)."""
    table = {}
    for key in cls.Options.model_fields:
        source = settings[key].source if key in settings else "default"
        table[key] = {"value": _plain(getattr(options, key)), "source": source}
    return table


def _plain(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return str(value)


def operational_option_names() -> frozenset[str]:
    """Every option name that some installed component declares operational (see
    :func:`promptopt.components.operational`)."""
    from promptopt.registry import get_registry

    names: set[str] = set()
    for registration in get_registry().registrations():
        names |= registration.cls.Options.operational_fields()
    return frozenset(names)


def without_operational(options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` (user keys: bare, ``scope.key`` or ``METHOD:key``) minus the operational
    ones: what a result, a store key or a study's identity depends on."""
    names = operational_option_names()
    return {
        key: value
        for key, value in options.items()
        if key.rpartition(":")[2].rpartition(".")[2] not in names
    }
