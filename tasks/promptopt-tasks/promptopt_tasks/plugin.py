"""The promptopt plugin of this distribution: registers FOLIO, GSM8K and the 27 BBH tasks.
Imports only the task modules (no ``datasets``/``torch``), so ``promptopt plugins`` stays fast."""

from __future__ import annotations

from collections.abc import Callable

from promptopt import hookimpl
from promptopt.components import Task
from promptopt_tasks.bbh import BBH_TASK_CLASSES
from promptopt_tasks.folio import Folio
from promptopt_tasks.gsm8k import GSM8K


@hookimpl
def register_tasks(register: Callable[[type[Task]], None]) -> None:
    register(Folio)
    register(GSM8K)
    for cls in BBH_TASK_CLASSES:
        register(cls)
