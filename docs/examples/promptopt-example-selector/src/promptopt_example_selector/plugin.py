"""The module the ``promptopt`` entry point names: it registers the selector.

The selector class is imported inside the hook, not at the top: ``promptopt --help`` and
``promptopt plugins`` import every plugin module, and the hook runs only when a command needs
components, so the selector's code (and anything heavy it imports) loads only then."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from promptopt import hookimpl

if TYPE_CHECKING:
    from promptopt.components import Selector


@hookimpl
def register_selectors(register: Callable[[type[Selector]], None]) -> None:
    from promptopt_example_selector.selector import GreedyScoreSelector

    register(GreedyScoreSelector)
