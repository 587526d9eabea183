"""Turn a RunConfig into a plan (names resolved, options routed and validated, nothing loaded)
and the plan into constructed components (the backends load their models last)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from promptopt.components import (
    Backend,
    Component,
    ComponentOptions,
    LossExtractor,
    Method,
    Proposer,
    Reasoner,
    Selector,
    Task,
)
from promptopt.config import RunConfig
from promptopt.errors import PromptoptError
from promptopt.kinds import PRESET_KINDS
from promptopt.options import Setting, make_options, options_table, route_options
from promptopt.registry import Registry, not_a


@dataclass
class Components:
    """The constructed components of one run; ``optimizer`` is the prompt-writing model (the
    task backend itself when the method uses one and none was given; None when unused);
    ``reasoner`` is None when the method names none (and the user chose none)."""

    method: Method
    task: Task
    backend: Backend
    proposer: Proposer
    reasoner: Reasoner | None
    loss_extractor: LossExtractor
    selector: Selector
    optimizer: Backend | None = None

    def names(self) -> dict[str, str]:
        """The name of every component of the run (a kind without one is left out)."""
        return {kind: component.name for kind, component in self._present().items()}

    def stateful(self) -> dict[str, Component]:
        """Components whose state is checkpointed."""
        present = self._present()
        return {kind: present[kind] for kind in ("method", *PRESET_KINDS) if kind in present}

    def _present(self) -> dict[str, Component]:
        kinds = ("method", "task", "backend", *PRESET_KINDS, "optimizer")
        found = {kind: getattr(self, kind) for kind in kinds}
        return {kind: component for kind, component in found.items() if component is not None}

    def backends(self) -> dict[str, Backend]:
        """The models of the run by role: ``task`` and, when distinct, ``optimizer``."""
        roles = {"task": self.backend}
        if self.optimizer is not None and self.optimizer is not self.backend:
            roles["optimizer"] = self.optimizer
        return roles

    def close(self) -> None:
        """Release every model."""
        for backend in self.backends().values():
            backend.close()


@dataclass
class RunPlan:
    """Everything a run will use, resolved and validated, before any model loads."""

    config: RunConfig
    method_cls: type[Method]
    classes: dict[str, type[Component]]
    settings: dict[str, dict[str, Setting]]
    options: dict[str, ComponentOptions] = field(default_factory=dict)

    @property
    def optimizer_separate(self) -> bool:
        """True when the optimizer is its own model (``--optimizer-model``)."""
        return "optimizer" in self.classes

    @property
    def task_cls(self) -> type[Task]:
        """The task class."""
        cls = self.classes["task"]
        if issubclass(cls, Task):
            return cls
        raise not_a(cls, Task)

    def backend_cls(self, scope: str = "backend") -> type[Backend]:
        """The backend class of the task model (``scope`` "backend") or of the optimizer model
        (``scope`` "optimizer", present when :attr:`optimizer_separate`)."""
        cls = self.classes[scope]
        if issubclass(cls, Backend):
            return cls
        raise not_a(cls, Backend)

    def reasoning_tokens(self) -> int | None:
        """How long the run's reasoning is, for evaluating its prompts the way it ran them: the
        reasoner's ``max_new_tokens``; without a reasoner (GPO generates the reasoning of its
        dev evaluations in its loss extractor) the loss extractor's. None when not declared."""
        scope = "reasoner" if "reasoner" in self.classes else "loss_extractor"
        value = getattr(self.options.get(scope), "max_new_tokens", None)
        return value if isinstance(value, int) and value > 0 else None

    def describe(self, task: Task | None = None) -> dict[str, Any]:
        """Components and every option value with its source (``promptopt run --dry-run``)."""
        names = {scope: cls.name for scope, cls in self.classes.items()}
        kinds = ("method", "task", "backend", *PRESET_KINDS)  # None: the method names none
        components: dict[str, str | None] = {kind: names.get(kind) for kind in kinds}
        components.update(names)
        out: dict[str, Any] = {
            "method": self.method_cls.name,
            "task": self.config.task,
            "model": self.config.model,
            "components": components,
            "options": {
                scope: options_table(cls, self.options[scope], self.settings[scope])
                for scope, cls in self.classes.items()
            },
        }
        if self.method_cls.uses_optimizer:
            out["optimizer_model"] = self.config.optimizer_model or self.config.model
        if task is not None:
            out["splits"] = task.split_sizes()
            details = task.describe()
            if details:
                out["task_details"] = details
        return out


def method_class(registry: Registry, name: str) -> type[Method]:
    return registry.method(name)


def resolve_component_names(config: RunConfig, method_cls: type[Method]) -> dict[str, str]:
    """Preset component names: the method's choices, overridden by ``config.components``; a
    kind the method leaves out (a reasoner, for a method that needs no reasoning) and the user
    does not name is absent."""
    chosen: dict[str, str | None] = {kind: getattr(method_cls, kind) for kind in PRESET_KINDS}
    for kind, name in config.components.items():
        if kind not in chosen:
            raise PromptoptError(
                f"cannot override component kind {kind!r}",
                hint=f"overridable: {', '.join(chosen)}",
            )
        chosen[kind] = name
    return {kind: name for kind, name in chosen.items() if name is not None}


def plan_run(config: RunConfig, registry: Registry) -> RunPlan:
    """Resolve names and route options; nothing is constructed or loaded."""
    from promptopt.whitebox import WhiteBoxBackend

    method_cls = method_class(registry, config.method)
    names = resolve_component_names(config, method_cls)
    backend_name = config.backend or method_cls.backend
    classes: dict[str, type[Component]] = {
        "method": method_cls,
        "task": registry.task(config.task),
        "backend": registry.backend(backend_name),
        **{kind: registry.get(kind, name) for kind, name in names.items()},
    }
    own = {kind: name == getattr(method_cls, kind) for kind, name in names.items()}
    own["backend"] = backend_name == method_cls.backend
    own["method"] = True
    if config.optimizer_model is not None or config.optimizer_backend is not None:
        if not method_cls.uses_optimizer:
            raise PromptoptError(
                f"method {method_cls.name!r} writes no prompts with a second model",
                hint="drop --optimizer-model/--optimizer-backend",
            )
        classes["optimizer"] = (
            registry.backend(config.optimizer_backend, flag="--optimizer-backend")
            if config.optimizer_backend
            else classes["backend"]
        )
    backend_cls = classes["backend"]
    if method_cls.needs_white_box and not issubclass(backend_cls, WhiteBoxBackend):
        white = [
            n
            for n in registry.names("backend")
            if issubclass(registry.get("backend", n), WhiteBoxBackend)
        ]
        raise PromptoptError(
            f"method {method_cls.name!r} needs gradients, which backend {backend_cls.name!r} "
            "does not give",
            hint=f"use a white-box backend: {', '.join(white) or 'none installed'}",
        )
    run_level: dict[str, Any] = {"seed": config.seed}
    if config.data_dir is not None:
        run_level["data_dir"] = config.data_dir
    settings = route_options(
        classes, config.options, method=method_cls, own=own, run_level=run_level
    )
    plan = RunPlan(config, method_cls, classes, settings)
    plan.options = {
        scope: make_options(cls, settings[scope], scope) for scope, cls in classes.items()
    }
    return plan


def build_components(
    plan: RunPlan,
    *,
    backend: Backend | None = None,
    optimizer: Backend | None = None,
) -> Components:
    """Construct every component. Data and option checks run first, model loading last, so bad
    input fails fast. ``backend``/``optimizer`` reuse already loaded models (tests, studies)."""
    built: dict[str, Any] = {
        scope: cls(plan.options[scope])
        for scope, cls in plan.classes.items()
        if scope not in ("backend", "optimizer")
    }
    task: Task = built["task"]
    for split in ("train", "dev"):  # bad data fails now, not after the model has loaded
        task.examples(split)
    built.setdefault("reasoner", None)  # the method needs no reasoning
    method: Method = built["method"]
    method.check_options(task)
    if backend is None:
        backend = plan.backend_cls()(plan.config.model, plan.options["backend"])
    if plan.optimizer_separate and optimizer is None:
        optimizer_cls = plan.backend_cls("optimizer")
        optimizer = optimizer_cls(plan.config.optimizer_model, plan.options["optimizer"])
    elif optimizer is None and plan.method_cls.uses_optimizer:
        optimizer = backend
    return Components(backend=backend, optimizer=optimizer, **built)


# --------------------------------------------------------------------------- flat options


def build_options(cls: type[Component], values: dict[str, Any]) -> Any:
    """``cls.Options`` from the keys of ``values`` it declares (for commands that build one
    task and one backend, e.g. ``promptopt eval``)."""
    from promptopt.options import option_fields

    mine = {k: Setting(v, "user") for k, v in values.items() if k in option_fields(cls)}
    return make_options(cls, mine, cls.kind)
