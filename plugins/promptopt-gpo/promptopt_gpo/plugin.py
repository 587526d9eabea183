"""Entry point of the promptopt-gpo distribution: registers the ``gpo`` and ``gpo-small``
methods and their proposer, loss extractor and selector (the methods name no reasoner: the loss
extractor generates the reasoning of the prompts it scores). Component modules load when
registered; torch only when MiniLM embeds its first text."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from promptopt import hookimpl

if TYPE_CHECKING:
    from promptopt.components import LossExtractor, Method, Proposer, Selector


@hookimpl
def register_methods(register: Callable[[type[Method]], None]) -> None:
    from promptopt_gpo.method import GpoMethod, GpoSmallMethod

    register(GpoMethod)
    register(GpoSmallMethod)


@hookimpl
def register_proposers(register: Callable[[type[Proposer]], None]) -> None:
    from promptopt_gpo.proposer import GpoProposer

    register(GpoProposer)


@hookimpl
def register_loss_extractors(register: Callable[[type[LossExtractor]], None]) -> None:
    from promptopt_gpo.loss import GpoLossExtractor

    register(GpoLossExtractor)


@hookimpl
def register_selectors(register: Callable[[type[Selector]], None]) -> None:
    from promptopt_gpo.selector import GpoSelector

    register(GpoSelector)
