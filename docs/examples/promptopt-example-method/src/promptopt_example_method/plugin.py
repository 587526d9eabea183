"""The module the ``promptopt`` entry point names: it registers the method and the three
components it brings (the reasoner is the core's ``chat``).

Classes are imported inside the hooks, not at the top: ``promptopt --help`` and
``promptopt plugins`` import every plugin module, and the hooks run only when a command needs
components."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from promptopt import hookimpl

if TYPE_CHECKING:
    from promptopt.components import LossExtractor, Method, Proposer, Selector


@hookimpl
def register_methods(register: Callable[[type[Method]], None]) -> None:
    from promptopt_example_method.method import PhraseSearchMethod

    register(PhraseSearchMethod)


@hookimpl
def register_proposers(register: Callable[[type[Proposer]], None]) -> None:
    from promptopt_example_method.proposer import PhraseEditProposer

    register(PhraseEditProposer)


@hookimpl
def register_loss_extractors(register: Callable[[type[LossExtractor]], None]) -> None:
    from promptopt_example_method.loss import AnswerLogprobLoss

    register(AnswerLogprobLoss)


@hookimpl
def register_selectors(register: Callable[[type[Selector]], None]) -> None:
    from promptopt_example_method.selector import ClimbSelector

    register(ClimbSelector)
