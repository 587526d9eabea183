"""Bad input on the real command line: one line naming the input and the fix, exit 2, no
traceback, and no run directory left behind (real subprocesses, nothing mocked)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

Setup = Callable[[Path, Path, Path], list[str]]


def promptopt(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "promptopt", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.strip().splitlines() if not ln.startswith("run directory:")]
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


# ---------------------------------------------------------------- usage errors (click's own)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["bogus"], "No such command 'bogus'"),
        (["run", "--bogus-flag"], "No such option: --bogus-flag"),
        (["run", "greater", "--task", "folio", "--seed", "abc"], "'--seed'"),
        (["eval", "--task", "folio", "--prompt", "hi", "--limit", "0"], "'--limit'"),
        (["methods", "extra"], "unexpected extra argument"),
    ],
)
def test_usage_errors_name_the_flag_without_a_traceback(args: list[str], needle: str) -> None:
    proc = promptopt(*args)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert needle in proc.stderr and "--help" in proc.stderr


# ---------------------------------------------------------------- `promptopt run`


def _config(content: bytes) -> Setup:
    def setup(tmp: Path, data: Path, model: Path) -> list[str]:
        (tmp / "run.toml").write_bytes(content)
        return ["run", "greater", "--task", "folio", "--config", str(tmp / "run.toml")]

    return setup


def _run(*extra: str) -> Setup:
    def setup(tmp: Path, data: Path, model: Path) -> list[str]:
        return ["run", "greater", "--task", "folio", "--data-dir", str(data), *extra]

    return setup


def _out_is_a_file(tmp: Path, data: Path, model: Path) -> list[str]:
    (tmp / "notes.txt").write_text("mine")
    return _run("--out", str(tmp / "notes.txt"))(tmp, data, model)


def _out_holds_files(tmp: Path, data: Path, model: Path) -> list[str]:
    (tmp / "mine").mkdir()
    (tmp / "mine" / "notes.txt").write_text("mine")
    return _run("--out", str(tmp / "mine"))(tmp, data, model)


def _plugin_that_raises(tmp: Path, data: Path, model: Path) -> list[str]:
    (tmp / "boom.py").write_text("raise RuntimeError('boom')\n")
    return _run("--plugin", str(tmp / "boom.py"))(tmp, data, model)


RUN_CASES: dict[str, tuple[Setup, tuple[str, ...]]] = {
    "negative steps": (_run("-o", "steps=-1"), ("steps=-1", "greater than or equal to 1")),
    "zero temperature": (_run("-o", "temperature=0"), ("temperature=0",)),
    "seed as an option": (_run("-o", "seed=3"), ("'seed' is a run setting", "--seed")),
    "config not a table": (_config(b"options = 3\n"), ("'options' must be a table",)),
    "config not UTF-8": (_config(b"\xff\xfe\x00bad"), ("not UTF-8",)),
    "config is a folder": (
        lambda tmp, data, model: ["run", "greater", "--task", "folio", "--config", str(tmp)],
        ("is a directory",),
    ),
    "out is a file": (_out_is_a_file, ("is a file", "--out")),
    "out holds files": (_out_holds_files, ("already holds other files", "--out")),
    "plugin raises": (_plugin_that_raises, ("boom.py", "failed to import", "RuntimeError")),
    "plugin is a folder": (_run("--plugin", "."), ("is a directory",)),
}


@pytest.mark.parametrize("case", sorted(RUN_CASES))
def test_bad_run_input(case: str, tmp_path: Path, shared_data_dir: Path) -> None:
    setup, needles = RUN_CASES[case]
    before = {p.name for p in tmp_path.iterdir()}
    proc = promptopt(*setup(tmp_path, shared_data_dir, tmp_path))
    assert_one_line_error(proc, *needles)
    created = {p.name for p in tmp_path.iterdir()} - before
    assert created <= {"run.toml", "notes.txt", "mine", "boom.py"}, created  # no run directory
    if (tmp_path / "mine").is_dir():
        assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]


def _run_dir(tmp: Path, config: object, checkpoint: object | None = None) -> Path:
    run = tmp / "run"
    run.mkdir()
    text = config if isinstance(config, str) else json.dumps(config)
    (run / "config.json").write_text(text)
    if checkpoint is not None:
        (run / "checkpoint.json").write_text(json.dumps(checkpoint))
    return run


def test_resume_refuses_settings_it_would_ignore(tmp_path: Path) -> None:
    run = _run_dir(tmp_path, {"method": "greater", "task": "folio"})
    proc = promptopt("run", "--resume", str(run), "--seed", "5", "--model", "x", "--out", "y")
    assert_one_line_error(proc, "--seed", "--model", "--out", "saved in the run directory")


def test_resume_with_a_corrupt_config_names_the_file(tmp_path: Path) -> None:
    run = _run_dir(tmp_path, "{not json")
    assert_one_line_error(promptopt("run", "--resume", str(run)), "config.json", "not readable")
    assert (run / "config.json").read_text() == "{not json"  # the user's file is left alone


def test_resume_with_a_checkpoint_that_is_not_an_object(tmp_path: Path) -> None:
    run = _run_dir(tmp_path, {"method": "greater", "task": "folio"}, checkpoint=[1, 2])
    proc = promptopt("run", "--resume", str(run))
    assert_one_line_error(proc, "checkpoint.json", "JSON list")


def test_resume_with_a_malformed_checkpoint(
    tmp_path: Path, shared_data_dir: Path, tiny_model_dir: Path
) -> None:
    config = {
        "method": "greater",
        "task": "folio",
        "backend": "hf",
        "model": str(tiny_model_dir),
        "data_dir": str(shared_data_dir),
        "options": {"steps": 1, "train_size": 2, "dev_size": 2, "max_new_tokens": 4},
    }
    run = _run_dir(tmp_path, config, checkpoint={"step": "x"})
    proc = promptopt("run", "--resume", str(run))
    assert_one_line_error(proc, "checkpoint", "is malformed")


# ---------------------------------------------------------------- other commands


def test_eval_without_a_prompt_or_a_run_asks_for_one() -> None:
    proc = promptopt("eval", "--task", "folio")
    assert_one_line_error(proc, "exactly one of --prompt and --run", "--prompt ''")


def test_eval_without_a_task_asks_for_one() -> None:
    assert_one_line_error(promptopt("eval", "--prompt", "Use logic."), "no --task")


def test_eval_of_a_run_with_a_corrupt_result(tmp_path: Path) -> None:
    (tmp_path / "result.json").write_text("{oops")
    proc = promptopt("eval", "--task", "folio", "--run", str(tmp_path))
    assert_one_line_error(proc, "result.json", "not readable JSON")


def test_transfer_with_no_quantization_named(tmp_path: Path) -> None:
    proc = promptopt(
        "transfer", "--run", str(tmp_path), "--models", "a.gguf", "--task", "folio", "--quants", ""
    )
    assert_one_line_error(proc, "--quants", "names no quantization")


def test_tasks_with_a_missing_data_dir(tmp_path: Path) -> None:
    proc = promptopt("tasks", "--data-dir", str(tmp_path / "nope"))
    assert_one_line_error(proc, "nope", "--data-dir")


def test_load_plugins_naming_nothing_installed() -> None:
    proc = promptopt("methods", env={"PROMPTOPT_LOAD_PLUGINS": "nonsense"})
    assert_one_line_error(proc, "PROMPTOPT_LOAD_PLUGINS", "'nonsense'", "promptopt-greater")


def test_eval_of_a_folder_without_a_run_says_so(tmp_path: Path) -> None:
    proc = promptopt("eval", "--run", str(tmp_path))
    assert_one_line_error(proc, str(tmp_path), "no promptopt run", "--prompt TEXT --task NAME")
    missing = promptopt("eval", "--run", str(tmp_path / "nope"), "--task", "folio")
    assert_one_line_error(missing, "does not exist")
