"""The one table of component kinds: interface class, registration hook, how the command line
names it, and whether a method preset chooses it. The registry, assembly, configuration and
CLI all read it."""

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


KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind("task", Task, "register_tasks", "--task"),
        Kind("backend", Backend, "register_backends", "--backend"),
        Kind("method", Method, "register_methods", "METHOD"),
        Kind("proposer", Proposer, "register_proposers", "--proposer", preset=True),
        Kind("reasoner", Reasoner, "register_reasoners", "--reasoner", preset=True),
        Kind(
            "loss_extractor",
            LossExtractor,
            "register_loss_extractors",
            "--loss-extractor",
            preset=True,
        ),
        Kind("selector", Selector, "register_selectors", "--selector", preset=True),
    )
}

#: Kinds in registration order.
COMPONENT_KINDS: tuple[str, ...] = tuple(KINDS)
#: The kinds a method preset chooses (overridable by name).
PRESET_KINDS: tuple[str, ...] = tuple(k for k, spec in KINDS.items() if spec.preset)
