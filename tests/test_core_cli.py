"""The command line as a user runs it: real subprocesses of the installed ``promptopt`` script."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

CHECK_IMPORTS = """
import sys
from promptopt.cli import main
try:
    main({args!r})
except SystemExit:
    pass
heavy = sorted(m for m in ("torch", "llama_cpp", "transformers", "datasets") if m in sys.modules)
print("HEAVY=" + ",".join(heavy), file=sys.stderr)
"""


def promptopt(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "promptopt", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
    )


def heavy_imports(args: list[str]) -> str:
    code = CHECK_IMPORTS.format(args=args)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    line = [ln for ln in proc.stderr.splitlines() if ln.startswith("HEAVY=")]
    assert line, proc.stderr
    return line[-1].removeprefix("HEAVY=")


def test_help_and_plugins_do_not_import_heavy_libraries() -> None:
    assert heavy_imports(["--help"]) == ""
    assert heavy_imports(["plugins", "--json"]) == ""
    assert heavy_imports(["methods"]) == ""


def test_plugins_json_lists_core_and_in_tree_plugins_with_versions() -> None:
    proc = promptopt("plugins", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {row["distribution"]: row for row in json.loads(proc.stdout)}
    for dist in (
        "promptopt",
        "promptopt-tasks",
        "promptopt-hf",
        "promptopt-greater",
        "promptopt-llamacpp",
        "promptopt-openai",
    ):
        assert dist in rows, f"{dist} missing from {sorted(rows)}"
        assert rows[dist]["version"], dist
        assert rows[dist]["components"] or rows[dist]["hooks"], dist
    kinds = {(c["kind"], c["name"]) for row in rows.values() for c in row["components"]}
    assert ("method", "greater") in kinds
    assert ("backend", "hf") in kinds and ("backend", "llamacpp") in kinds
    assert ("backend", "openai") in kinds
    assert ("task", "folio") in kinds and ("task", "bbh/navigate") in kinds


def test_unknown_method_is_one_line_error_listing_choices() -> None:
    proc = promptopt("run", "no-such-method", "--task", "folio")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "unknown method 'no-such-method'" in lines[0] and "greater" in lines[0]
    assert "Traceback" not in proc.stderr


def test_unknown_option_is_one_line_error(shared_data_dir: Path) -> None:
    proc = promptopt(
        "run", "greater", "--task", "folio", "-o", "stepz=2", "--data-dir", str(shared_data_dir)
    )
    assert proc.returncode == 2
    assert "unknown option 'stepz'" in proc.stderr and "steps" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_bad_option_value_names_the_key(shared_data_dir: Path) -> None:
    proc = promptopt(
        "run", "greater", "--task", "folio", "-o", "steps=lots", "--data-dir", str(shared_data_dir)
    )
    assert proc.returncode == 2
    assert "steps='lots'" in proc.stderr


def test_resume_of_a_non_run_directory_is_a_clear_error(tmp_path: Path) -> None:
    proc = promptopt("run", "--resume", str(tmp_path))
    assert proc.returncode == 2
    assert "not a promptopt run directory" in proc.stderr


def test_debug_shows_the_traceback() -> None:
    proc = promptopt("--debug", "run", "no-such-method", "--task", "folio")
    assert proc.returncode != 0
    assert "Traceback" in proc.stderr


def test_bad_data_dir_fails_before_a_run_directory_exists(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = promptopt(
        "run", "greater", "--task", "folio", "--data-dir", str(tmp_path / "nope"), "--out", str(out)
    )
    assert proc.returncode == 2 and "does not exist" in proc.stderr
    assert not out.exists()


def test_gradient_method_on_a_black_box_backend_names_the_white_box_ones(
    shared_data_dir: Path, tmp_path: Path
) -> None:
    proc = promptopt(
        "run",
        "greater",
        "--task",
        "folio",
        "--backend",
        "llamacpp",
        "--data-dir",
        str(shared_data_dir),
        "--out",
        str(tmp_path / "run"),
    )
    assert proc.returncode == 2
    assert "needs gradients" in proc.stderr and "hf" in proc.stderr
    assert not (tmp_path / "run").exists()


# ----------------------------------------------------------------------------- after a run

FAKES = "from promptopt.testing.fakes import *  # noqa: F403\n"


def split_command(line: str) -> tuple[dict[str, str], list[str]]:
    """The shell command a closing line ends with, as (environment assignments, words)."""
    words = shlex.split(line.partition("on the test split: ")[2])
    env: dict[str, str] = {}
    while words and "=" in words[0] and not words[0].startswith("-"):
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    return env, words


def test_run_ends_naming_its_directory_and_a_working_eval_command(tmp_path: Path) -> None:
    (tmp_path / "fakes_plugin.py").write_text(FAKES)
    env = {**os.environ, "PROMPTOPT_CACHE_DIR": str(tmp_path / "cache"), "PROMPTOPT_PROGRESS": "0"}
    run = ["run", "fake", "--task", "fake/yes-no", "-o", "steps=1", "--plugin", "fakes_plugin.py"]
    proc = subprocess.run(
        [sys.executable, "-m", "promptopt", *run],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)  # stdout stays pure JSON, for scripts
    (run_dir,) = (tmp_path / "runs").iterdir()
    last = proc.stderr.strip().splitlines()[-1]
    relative = str(run_dir.relative_to(tmp_path))
    assert last.startswith(f"promptopt: run directory {relative};"), last

    assignments, words = split_command(last)
    assert words[:4] == ["promptopt", "eval", "--run", relative], last
    evaluated = subprocess.run(
        [sys.executable, "-m", "promptopt", *words[1:]],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**env, **assignments},
        timeout=300,
    )
    assert evaluated.returncode == 0, evaluated.stderr
    summary = json.loads(evaluated.stdout)
    assert summary["task"] == "fake/yes-no" and summary["backend"] == "fake"
    assert summary["split"] == "test" and summary["n"] == 3
    assert summary["prompt"] == result["best_prompt"]

    again = subprocess.run(  # a finished run, resumed, ends with the same line
        [sys.executable, "-m", "promptopt", "run", "--resume", relative, *run[-2:]],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    assert again.returncode == 0, again.stderr
    assert again.stderr.strip().splitlines()[-1] == last
