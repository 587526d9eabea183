"""The Python API (``promptopt.optimize/evaluate/study/load_run``) on the fake components: typed
results equal to the files the run wrote, an interrupted run resumed with ``resume=``, the
same one-line errors as the command line, and the CLI going through the same functions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

FAKES = "from promptopt.testing.fakes import *  # noqa: F403\n"


def test_import_promptopt_is_light_and_exposes_the_api() -> None:
    code = (
        "import sys, promptopt\n"
        "names = [promptopt.optimize, promptopt.evaluate, promptopt.study, promptopt.load_run]\n"
        "assert all(callable(n) for n in names)\n"
        "assert issubclass(promptopt.PromptoptError, Exception)\n"
        "print(sorted(m for m in ('torch', 'transformers', 'llama_cpp') if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_study_is_the_function_even_after_the_study_package_loads() -> None:
    import promptopt
    import promptopt.studies.driver

    assert callable(promptopt.study) and promptopt.study.__module__ == "promptopt.api"


def test_optimize_returns_the_run_and_load_run_reads_it_back(
    promptopt_fakes: Any, tmp_path: Path
) -> None:
    import promptopt
    from promptopt.runs import RunResult

    result = promptopt.optimize(
        "fake", "fake/yes-no", options={"steps": 2}, out=tmp_path / "run", progress=False
    )
    assert isinstance(result, RunResult)
    saved = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result.to_dict() == saved
    assert (result.best_prompt, result.steps_run) == (saved["best_prompt"], 2)
    assert result.method == "fake" and result.task == "fake/yes-no"
    assert [step["step"] for step in result.steps] == [0, 1]
    assert result.best.text == result.best_prompt
    assert promptopt.load_run(tmp_path / "run") == result


def test_an_interrupted_run_says_how_to_resume_in_python_and_resume_finishes_it(
    promptopt_fakes: Any,
    promptopt_register: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import promptopt
    from promptopt.pluginmanager import get_plugin_manager

    class StopAfterFirstStep:
        @promptopt.hookimpl
        def step_end(self, run: Any, record: Any) -> None:
            raise KeyboardInterrupt

    stopper = promptopt_register(StopAfterFirstStep())
    run_dir = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        promptopt.optimize("fake", "fake/yes-no", options={"steps": 3}, out=run_dir, progress=False)
    assert f"promptopt.optimize(resume={str(run_dir)!r})" in capsys.readouterr().err
    with pytest.raises(promptopt.PromptoptError, match="has not finished"):
        promptopt.load_run(run_dir)
    get_plugin_manager().unregister(stopper)

    with pytest.raises(promptopt.PromptoptError, match="optimizes with 'fake', not 'gpo'"):
        promptopt.optimize("gpo", resume=run_dir, progress=False)
    with pytest.raises(promptopt.PromptoptError, match="not options"):
        promptopt.optimize(resume=run_dir, options={"steps": 9}, progress=False)
    result = promptopt.optimize(resume=run_dir, progress=False)
    assert result.steps_run == 3 and len(result.steps) == 3
    # a finished run: its result, nothing run again
    again = promptopt.optimize("fake", "fake/yes-no", resume=run_dir, progress=False)
    assert again == result


def test_evaluate_gives_a_score_an_interval_and_per_example_records(
    promptopt_fakes: Any, tmp_path: Path
) -> None:
    import promptopt
    from promptopt.results import EvalResult

    result = promptopt.evaluate(
        "Use logic.", "fake/yes-no", backend="fake", split="train", limit=4, progress=False
    )
    assert isinstance(result, EvalResult)
    assert result.n == len(result.records) == 4
    low, high = result.ci
    assert 0.0 <= low <= result.score <= high <= 1.0
    assert result.score == sum(r.score for r in result.records) / 4
    assert result.accuracy == result.score  # every fake score is 0 or 1
    task = promptopt_fakes.ListTask()
    questions = {ex.id: ex.question for ex in task.examples("train")}
    for record in result.records:
        assert record.question == questions[record.id]
        assert record.reasoning and record.output.startswith(record.reasoning.rstrip())
        assert record.score == (1.0 if record.parsed == record.gold else 0.0)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["n"] == 4 and len(data["records"]) == 4


def test_evaluate_takes_a_run_result_with_its_task_and_layout(
    promptopt_fakes: Any, tmp_path: Path
) -> None:
    import promptopt

    run = promptopt.optimize(
        "fake", "fake/yes-no", options={"steps": 1}, out=tmp_path / "run", progress=False
    )
    result = promptopt.evaluate(run, backend="fake", split="dev", limit=3, progress=False)
    assert result.prompt == run.best_prompt and result.task == "fake/yes-no"
    by_text = promptopt.evaluate(
        run.best_prompt, "fake/yes-no", backend="fake", split="dev", limit=3, progress=False
    )
    assert [r.output for r in result.records] == [r.output for r in by_text.records]


def test_api_errors_are_the_cli_errors(promptopt_fakes: Any, tmp_path: Path) -> None:
    import promptopt

    with pytest.raises(promptopt.PromptoptError) as caught:
        promptopt.evaluate("Use logic.", "fake/yes-no", backend="fake", split="validation")
    (tmp_path / "fakes_plugin.py").write_text(FAKES)
    args = ["eval", "--task", "fake/yes-no", "--backend", "fake", "--prompt", "Use logic."]
    proc = subprocess.run(
        [sys.executable, "-m", "promptopt", *args, "--split", "validation"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PROMPTOPT_PLUGIN_PATHS": str(tmp_path / "fakes_plugin.py")},
        timeout=300,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"promptopt: error: {caught.value}"

    with pytest.raises(promptopt.PromptoptError, match="unknown task 'no/such'"):
        promptopt.optimize("fake", "no/such", progress=False)
    with pytest.raises(promptopt.PromptoptError, match="holds no promptopt run"):
        promptopt.load_run(tmp_path)
    with pytest.raises(promptopt.PromptoptError, match="'seed' is a run setting"):
        promptopt.evaluate("x", "fake/yes-no", backend="fake", options={"seed": 3})
    with pytest.raises(promptopt.PromptoptError, match="type int is not supported"):
        promptopt.evaluate("x", 42, backend="fake")


def test_study_returns_the_report_it_wrote(promptopt_fakes: Any, tmp_path: Path) -> None:
    import promptopt
    from promptopt.results import StudyResult

    result = promptopt.study(
        "fake",
        "fake/yes-no",
        tmp_path / "study",
        seeds=[0, 1],
        backend="fake",
        options={"steps": 1},
        test_limit=4,
        progress=False,
    )
    assert isinstance(result, StudyResult)
    saved = json.loads((tmp_path / "study" / "report.json").read_text())
    assert result.to_dict() == saved
    assert result.report_path.is_file()
    assert {p.name for p in result.files} >= {"report.md", "report.json"}
    again = promptopt.study(
        ["fake"], ["fake/yes-no"], tmp_path / "study", seeds=[0, 1], backend="fake",
        options={"steps": 1}, test_limit=4, progress=False,
    )  # fmt: skip
    assert again.to_dict() == saved
