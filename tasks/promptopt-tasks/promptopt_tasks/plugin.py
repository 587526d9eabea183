"""The promptopt plugin of this distribution: registers FOLIO, GSM8K and the 27 BBH tasks.
The task modules load when registered (never ``datasets``/``torch``), so ``--help`` stays fast."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from promptopt import hookimpl

if TYPE_CHECKING:
    from promptopt.components import Task


@hookimpl
def register_tasks(register: Callable[[type[Task]], None]) -> None:
    from promptopt_tasks.bbh import BBH_TASK_CLASSES
    from promptopt_tasks.folio import Folio
    from promptopt_tasks.gsm8k import GSM8K

    register(Folio)
    register(GSM8K)
    for cls in BBH_TASK_CLASSES:
        register(cls)
