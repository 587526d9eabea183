"""The promptopt-tasks distribution as installed: entry point, registry names, light imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pluggy

from promptopt.registry import get_registry
from promptopt.types import AnswerType


def test_registry_lists_the_29_tasks(promptopt_pm: pluggy.PluginManager) -> None:
    registry = get_registry()
    names = [n for n in registry.names("task") if n in ("folio", "gsm8k") or n.startswith("bbh/")]
    assert len(names) == 29
    assert {"folio", "gsm8k", "bbh/word_sorting", "bbh/dyck_languages"} <= set(names)
    dists = {r.distribution for r in registry.registrations() if r.name in names}
    assert dists == {"promptopt-tasks"}


def test_tasks_build_from_the_flat_option_dict(
    promptopt_pm: pluggy.PluginManager, shared_data_dir: Path
) -> None:
    """The run loop passes each component the keys its Options declares."""
    flat = {"data_dir": str(shared_data_dir), "train_size": 3, "max_new_tokens": 8, "seed": 1}
    cls = get_registry().get("task", "bbh/object_counting")
    known = {k: v for k, v in flat.items() if k in cls.Options.model_fields}
    assert set(known) == {"data_dir", "train_size"}
    task = cls(cls.Options.model_validate(known))
    assert task.answer_type is AnswerType.INTEGER  # type: ignore[attr-defined]
    assert len(task.examples("train")) == 3  # type: ignore[attr-defined]


def test_plugin_import_stays_light() -> None:
    code = (
        "import sys, promptopt_tasks.plugin; "
        "print(sorted(m for m in ('datasets', 'torch', 'transformers', 'pandas') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
