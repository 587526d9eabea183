"""The module the ``promptopt`` entry point names: it registers the selector."""

from __future__ import annotations

from collections.abc import Callable

from promptopt import hookimpl
from promptopt.components import Selector

from promptopt_example_selector.selector import GreedyScoreSelector


@hookimpl
def register_selectors(register: Callable[[type[Selector]], None]) -> None:
    register(GreedyScoreSelector)
