"""Turn a RunConfig into constructed components: names resolved, options routed and validated."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from promptopt.components import (
    Backend,
    Component,
    LossExtractor,
    Method,
    Proposer,
    Reasoner,
    Selector,
    Task,
)
from promptopt.config import RunConfig
from promptopt.errors import PromptoptError
from promptopt.registry import Registry

#: Run-level keys that are routed to components that declare them but are not errors otherwise.
RUN_LEVEL_KEYS = ("seed", "data_dir")


@dataclass
class Components:
    """The constructed components of one run."""

    method: Method
    task: Task
    backend: Backend
    proposer: Proposer
    reasoner: Reasoner
    loss_extractor: LossExtractor
    selector: Selector

    def names(self) -> dict[str, str]:
        return {kind: getattr(self, kind).name for kind in self.__dataclass_fields__}

    def stateful(self) -> dict[str, Component]:
        """Components whose state is checkpointed."""
        return {
            "method": self.method,
            "proposer": self.proposer,
            "reasoner": self.reasoner,
            "loss_extractor": self.loss_extractor,
            "selector": self.selector,
        }


def option_fields(cls: type[Component]) -> set[str]:
    return set(cls.Options.model_fields)


def build_options(cls: type[Component], values: Mapping[str, Any]) -> Any:
    """``cls.Options`` from the keys of ``values`` it declares; a bad value names the key."""
    mine = {key: value for key, value in values.items() if key in option_fields(cls)}
    try:
        return cls.Options(**mine)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        raise PromptoptError(
            f"option {key}={values.get(key)!r} for {cls.kind} {cls.name!r}: {first['msg']}",
            hint=f"pass a valid value with -o {key}=...",
        ) from exc


def check_unknown_options(values: Mapping[str, Any], classes: Iterable[type[Component]]) -> None:
    """Fail on option keys that no chosen component declares, listing the valid ones."""
    known: set[str] = set()
    for cls in classes:
        known |= option_fields(cls)
    unknown = sorted(set(values) - known - set(RUN_LEVEL_KEYS))
    if unknown:
        raise PromptoptError(
            f"unknown option {unknown[0]!r}",
            hint=f"options of this run: {', '.join(sorted(known))}",
        )


def method_class(registry: Registry, name: str) -> type[Method]:
    cls = registry.get("method", name)
    assert issubclass(cls, Method)
    return cls


def resolve_component_names(config: RunConfig, method_cls: type[Method]) -> dict[str, str]:
    """Component names: the method's preset, overridden by ``config.components``."""
    names = {
        "proposer": method_cls.proposer,
        "reasoner": method_cls.reasoner,
        "loss_extractor": method_cls.loss_extractor,
        "selector": method_cls.selector,
    }
    for kind, name in config.components.items():
        if kind not in names:
            raise PromptoptError(
                f"cannot override component kind {kind!r}",
                hint=f"overridable: {', '.join(names)}",
            )
        names[kind] = name
    return names


def build_components(config: RunConfig, registry: Registry) -> Components:
    """Resolve every name, check options, construct the components (the backend loads its model)."""
    method_cls = method_class(registry, config.method)
    names = resolve_component_names(config, method_cls)
    classes: dict[str, type[Component]] = {
        "method": method_cls,
        "task": registry.get("task", config.task),
        "backend": registry.get("backend", config.backend or method_cls.backend),
        **{kind: registry.get(kind, name) for kind, name in names.items()},
    }
    values: dict[str, Any] = {**method_cls.defaults, **config.options, "seed": config.seed}
    if config.data_dir is not None:
        values["data_dir"] = config.data_dir
    check_unknown_options(config.options, classes.values())
    options = {kind: build_options(cls, values) for kind, cls in classes.items()}
    built: dict[str, Component] = {
        kind: cls(options[kind]) for kind, cls in classes.items() if kind != "backend"
    }
    backend_cls = classes["backend"]
    assert issubclass(backend_cls, Backend)
    if method_cls.needs_white_box and not backend_cls.white_box:
        backends = [registry.get("backend", n) for n in registry.names("backend")]
        white = [c.name for c in backends if issubclass(c, Backend) and c.white_box]
        raise PromptoptError(
            f"method {method_cls.name!r} needs gradients, which backend {backend_cls.name!r} "
            "does not give",
            hint=f"use a white-box backend: {', '.join(white) or 'none installed'}",
        )
    task = built["task"]
    assert isinstance(task, Task)
    for split in ("train", "dev"):  # bad data fails now, not after the model has loaded
        task.examples(split)
    built["backend"] = backend_cls(config.model, options["backend"])  # loads the model: last
    return Components(**built)  # type: ignore[arg-type]
