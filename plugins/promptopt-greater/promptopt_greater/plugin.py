"""Entry point of the promptopt-greater distribution: registers the ``greater`` method and its
components. Imports no torch (the tensor code loads when a step runs)."""

from __future__ import annotations

from collections.abc import Callable

from promptopt import hookimpl
from promptopt.components import LossExtractor, Method, Proposer, Reasoner, Selector
from promptopt_greater.loss import GreaterLossExtractor
from promptopt_greater.method import GreaterMethod
from promptopt_greater.proposer import GreaterProposer
from promptopt_greater.reasoner import GreaterReasoner
from promptopt_greater.selector import GreaterSelector


@hookimpl
def register_methods(register: Callable[[type[Method]], None]) -> None:
    register(GreaterMethod)


@hookimpl
def register_proposers(register: Callable[[type[Proposer]], None]) -> None:
    register(GreaterProposer)


@hookimpl
def register_reasoners(register: Callable[[type[Reasoner]], None]) -> None:
    register(GreaterReasoner)


@hookimpl
def register_loss_extractors(register: Callable[[type[LossExtractor]], None]) -> None:
    register(GreaterLossExtractor)


@hookimpl
def register_selectors(register: Callable[[type[Selector]], None]) -> None:
    register(GreaterSelector)
