"""The one table of component kinds: interface class, registration hook, how the command line
names it, whether a method preset chooses it, and whether its state is checkpointed. The
registry, assembly, configuration and CLI all read it."""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class Kind:
    """One component kind."""

    name: str
    base: type[Component]
    hook: str
    #: How users choose it on the command line (for messages).
    flag: str
    #: True for the four kinds a method preset names and ``--proposer`` & co. override.
    preset: bool = False
    #: True when the loop checkpoints the component's ``state_dict``.
    stateful: bool = False


KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind("task", Task, "register_tasks", "--task"),
        Kind("backend", Backend, "register_backends", "--backend"),
        Kind("method", Method, "register_methods", "METHOD", stateful=True),
        Kind("proposer", Proposer, "register_proposers", "--proposer", True, True),
        Kind("reasoner", Reasoner, "register_reasoners", "--reasoner", True, True),
        Kind(
            "loss_extractor",
            LossExtractor,
            "register_loss_extractors",
            "--loss-extractor",
            True,
            True,
        ),
        Kind("selector", Selector, "register_selectors", "--selector", True, True),
    )
}

#: Kinds in registration order.
COMPONENT_KINDS: tuple[str, ...] = tuple(KINDS)
#: The kinds a method preset chooses (overridable by name).
PRESET_KINDS: tuple[str, ...] = tuple(k for k, spec in KINDS.items() if spec.preset)
#: Where options can be scoped (``-o selector.keep=5``): every kind, plus the optimizer model.
OPTION_SCOPES: tuple[str, ...] = (*COMPONENT_KINDS, "optimizer")
