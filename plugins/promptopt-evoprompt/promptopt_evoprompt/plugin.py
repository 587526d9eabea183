"""Entry point of the promptopt-evoprompt distribution: registers the ``evoprompt-ga`` and
``evoprompt-de`` methods with their proposers and selectors, and the ``evoprompt-dev`` loss
extractor (no reasoner: candidates are scored through promptopt.evaluation)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from promptopt import hookimpl

if TYPE_CHECKING:
    from promptopt.components import LossExtractor, Method, Proposer, Selector


@hookimpl
def register_methods(register: Callable[[type[Method]], None]) -> None:
    from promptopt_evoprompt.method import EvoPromptDe, EvoPromptGa

    register(EvoPromptGa)
    register(EvoPromptDe)


@hookimpl
def register_proposers(register: Callable[[type[Proposer]], None]) -> None:
    from promptopt_evoprompt.proposer import DeProposer, GaProposer

    register(GaProposer)
    register(DeProposer)


@hookimpl
def register_loss_extractors(register: Callable[[type[LossExtractor]], None]) -> None:
    from promptopt_evoprompt.loss import DevLossExtractor

    register(DevLossExtractor)


@hookimpl
def register_selectors(register: Callable[[type[Selector]], None]) -> None:
    from promptopt_evoprompt.selector import DeSelector, GaSelector

    register(GaSelector)
    register(DeSelector)
