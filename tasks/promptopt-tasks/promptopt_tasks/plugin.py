"""The promptopt plugin of this distribution: registers FOLIO, GSM8K and the 27 BBH tasks, and
resolves the user's own data (``--task reviews.csv``, ``--task hf:ORG/NAME``) into tasks.
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


@hookimpl
def resolve_task(ref: str) -> type[Task] | None:
    """A task over a data file (.csv, .tsv, .jsonl, .json, .parquet) or a hub dataset
    (``hf:ORG/NAME[:CONFIG]``); None for any other reference."""
    from promptopt_tasks.datafile import resolve

    return resolve(ref)
