"""Every installed in-tree task passes the plugin-author kit's task contract on the real data."""

from __future__ import annotations

from pathlib import Path

import pytest

from promptopt.registry import Registry
from promptopt.testing.contracts import check_task

TASK_NAMES = Registry.from_plugin_manager().names("task")


def test_all_29_tasks_are_registered() -> None:
    assert {"folio", "gsm8k"} <= set(TASK_NAMES)
    assert len([name for name in TASK_NAMES if name.startswith("bbh/")]) == 27


@pytest.mark.parametrize(
    "name", [n for n in TASK_NAMES if n == "folio" or n == "gsm8k" or n.startswith("bbh/")]
)
def test_task_contract(name: str, shared_data_dir: Path) -> None:
    cls = Registry.from_plugin_manager().get("task", name)
    check_task(cls(cls.Options(data_dir=str(shared_data_dir))))  # type: ignore[call-arg]
