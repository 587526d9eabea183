"""Runs as a library (``promptopt.runs``): start, interrupt and resume a run on the fake
components, with the typed result equal to ``result.json``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from promptopt.errors import PromptoptError


def fake_config(**options: Any) -> Any:
    from promptopt.config import make_run_config

    return make_run_config({}, {"method": "fake", "task": "fake/yes-no", "options": options})


def test_start_run_returns_the_typed_result_json(
    promptopt_fakes: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from promptopt.runs import RunResult, RunWork, start_run

    work = RunWork()
    result = start_run(fake_config(steps=2), out=tmp_path / "run", progress=False, work=work)
    saved = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result.to_dict() == saved
    assert result.run_dir == tmp_path / "run"
    assert result.best_prompt == saved["best_prompt"]
    assert result.initial_prompt == saved["initial_prompt"]
    assert result.steps_run == saved["steps_run"] == 2
    assert result.compute == saved["compute"]
    assert work.models_loaded == 1
    assert f"run directory: {tmp_path / 'run'}" in capsys.readouterr().err
    assert RunResult.load(tmp_path / "run") == result


def test_resume_run_finishes_an_interrupted_run_quietly(
    promptopt_fakes: Any,
    promptopt_register: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import promptopt
    from promptopt.rundir import RunDir
    from promptopt.runs import RunResult, resume_run, start_run

    class StopAfterFirstStep:
        @promptopt.hookimpl
        def step_end(self, run: Any, record: Any) -> None:
            raise KeyboardInterrupt

    stopper = promptopt_register(StopAfterFirstStep())
    with pytest.raises(KeyboardInterrupt):
        start_run(fake_config(steps=3), out=tmp_path / "run", progress=False, notify=None)
    assert RunResult.load(tmp_path / "run") is None
    from promptopt.pluginmanager import get_plugin_manager

    get_plugin_manager().unregister(stopper)
    result = resume_run(RunDir.open(tmp_path / "run"), progress=False, notify=None)
    assert result.steps_run == 3
    assert capsys.readouterr().err == ""


def test_a_result_without_its_fields_is_a_one_line_error(tmp_path: Path) -> None:
    from promptopt.runs import RunResult

    with pytest.raises(PromptoptError, match="has no str 'best_prompt'"):
        RunResult.from_dict({"initial_prompt": "x", "steps_run": 1}, tmp_path)
