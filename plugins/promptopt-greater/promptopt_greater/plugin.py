"""Entry point of the promptopt-greater distribution: registers the ``greater`` method and its
components. Imports no torch (the tensor code loads when a step runs)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from promptopt import hookimpl

if TYPE_CHECKING:
    from promptopt.components import LossExtractor, Method, Proposer, Reasoner, Selector


@hookimpl
def register_methods(register: Callable[[type[Method]], None]) -> None:
    from promptopt_greater.method import GreaterAnswerCEMethod, GreaterMethod, GreaterSmallMethod

    register(GreaterMethod)
    register(GreaterAnswerCEMethod)
    register(GreaterSmallMethod)


@hookimpl
def register_proposers(register: Callable[[type[Proposer]], None]) -> None:
    from promptopt_greater.proposer import GreaterProposer

    register(GreaterProposer)


@hookimpl
def register_reasoners(register: Callable[[type[Reasoner]], None]) -> None:
    from promptopt_greater.reasoner import GreaterReasoner

    register(GreaterReasoner)


@hookimpl
def register_loss_extractors(register: Callable[[type[LossExtractor]], None]) -> None:
    from promptopt_greater.loss import GreaterLossExtractor

    register(GreaterLossExtractor)


@hookimpl
def register_selectors(register: Callable[[type[Selector]], None]) -> None:
    from promptopt_greater.selector import GreaterSelector

    register(GreaterSelector)
