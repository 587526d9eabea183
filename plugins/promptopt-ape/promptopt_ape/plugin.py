"""Entry point of the promptopt-ape distribution: registers the ``ape`` method and its
proposer, loss extractor and selector (the method names no reasoner: its loss extractor
generates the reasoning of the prompts it scores)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from promptopt import hookimpl

if TYPE_CHECKING:
    from promptopt.components import LossExtractor, Method, Proposer, Selector


@hookimpl
def register_methods(register: Callable[[type[Method]], None]) -> None:
    from promptopt_ape.method import ApeMethod

    register(ApeMethod)


@hookimpl
def register_proposers(register: Callable[[type[Proposer]], None]) -> None:
    from promptopt_ape.proposer import ApeProposer

    register(ApeProposer)


@hookimpl
def register_loss_extractors(register: Callable[[type[LossExtractor]], None]) -> None:
    from promptopt_ape.loss import ApeLossExtractor

    register(ApeLossExtractor)


@hookimpl
def register_selectors(register: Callable[[type[Selector]], None]) -> None:
    from promptopt_ape.selector import ApeSelector

    register(ApeSelector)
