"""Runs and resume under crashes, concurrent processes and careless input: each case through the
real CLI or the real loop, on the kit's fake components."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from promptopt.runlock import RunLock

FAKES = Path(__file__).parent / "data" / "fakes_plugin.py"


def promptopt(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "promptopt", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PROMPTOPT_PROGRESS": "0", **(env or {})},
    )


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    notes = ("run directory:", "promptopt: kept the initial prompt")  # what a run says anyway
    lines = [ln for ln in proc.stderr.strip().splitlines() if not ln.startswith(notes)]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def fake_run(out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return promptopt(
        "run", "fake", "--task", "fake/yes-no", "--plugin", str(FAKES), "--out", str(out),
        "-o", "steps=4", "--seed", "3", *extra,
    )  # fmt: skip


def steps_of(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "steps.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in ("timings", "compute")} for r in rows]


@pytest.fixture(scope="module")
def straight(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("straight") / "run"
    proc = fake_run(out)
    assert proc.returncode == 0, proc.stderr
    return out


def interrupted(tmp_path: Path, after: int) -> Path:
    """A run stopped after ``after`` steps, as Ctrl-C would."""
    plugin = tmp_path / "stop.py"
    plugin.write_text(
        "import promptopt\n\n"
        "@promptopt.hookimpl\n"
        "def step_end(run, record):\n"
        f"    if record.step + 1 == {after} and not run.resumed:\n"
        "        raise KeyboardInterrupt\n"
    )
    out = tmp_path / "run"
    proc = fake_run(out, "--plugin", str(plugin))
    assert proc.returncode == 130, proc.stderr
    return out


# ----------------------------------------------------------------- 1. no duplicate first step


def test_a_crash_before_the_first_checkpoint_does_not_repeat_step_zero(
    straight: Path, tmp_path: Path
) -> None:
    run = interrupted(tmp_path, 1)
    (run / "checkpoint.json").unlink()  # killed between step 0's log line and its checkpoint
    assert len(steps_of(run)) == 1
    proc = promptopt("run", "--resume", str(run), "--plugin", str(FAKES))
    assert proc.returncode == 0, proc.stderr
    result = json.loads((run / "result.json").read_text())
    assert len(result["losses"]) == result["steps_run"] == 4
    assert steps_of(run) == steps_of(straight)


# ----------------------------------------------------------------- 2. one process per run


def test_a_second_process_on_a_run_directory_is_refused_at_once(tmp_path: Path) -> None:
    run = interrupted(tmp_path, 2)
    with RunLock(run):  # another process holds the run
        line = one_line_error(promptopt("run", "--resume", str(run), "--plugin", str(FAKES)))
    assert "is in use by process" in line and str(os.getpid()) in line
    assert len(steps_of(run)) == 2  # nothing ran


def test_a_stale_lock_of_a_dead_process_is_taken_over(straight: Path, tmp_path: Path) -> None:
    run = interrupted(tmp_path, 2)
    (run / ".lock").write_text("999999\n")  # left by a killed process: no flock is held
    proc = promptopt("run", "--resume", str(run), "--plugin", str(FAKES))
    assert proc.returncode == 0, proc.stderr
    assert steps_of(run) == steps_of(straight)


def test_two_fresh_runs_on_one_out_directory(tmp_path: Path) -> None:
    out = tmp_path / "shared-out"
    with RunLock(out):
        line = one_line_error(fake_run(out))
    assert "is in use by process" in line
    assert sorted(p.name for p in out.iterdir()) == [".lock"]  # the loser wrote nothing
    proc = fake_run(out)  # the lock file alone does not block the directory afterwards
    assert proc.returncode == 0, proc.stderr


# ----------------------------------------------------------------- 3. a torn last line


def test_a_torn_last_step_line_is_dropped_and_the_step_redone(
    straight: Path, tmp_path: Path
) -> None:
    run = interrupted(tmp_path, 2)
    with (run / "steps.jsonl").open("a") as handle:
        handle.write('{"step": 2, "position": 0, "prompt_bef')  # crash mid-write
    proc = promptopt("run", "--resume", str(run), "--plugin", str(FAKES))
    assert proc.returncode == 0, proc.stderr
    assert steps_of(run) == steps_of(straight)


# ----------------------------------------------------------------- 4. checkpoint versions


def test_a_checkpoint_of_another_format_is_a_one_line_error(tmp_path: Path) -> None:
    run = interrupted(tmp_path, 1)
    checkpoint = json.loads((run / "checkpoint.json").read_text())
    checkpoint["format"] = 1
    (run / "checkpoint.json").write_text(json.dumps(checkpoint))
    line = one_line_error(promptopt("run", "--resume", str(run), "--plugin", str(FAKES)))
    assert "format 1, not 3" in line and "another promptopt version" in line


# ----------------------------------------------------------------- 8. remote code


def test_resume_never_turns_on_remote_code_by_itself(tmp_path: Path) -> None:
    run = interrupted(tmp_path, 1)
    config = json.loads((run / "config.json").read_text())
    config["options"]["backend.trust_remote_code"] = True
    (run / "config.json").write_text(json.dumps(config))
    line = one_line_error(promptopt("run", "--resume", str(run), "--plugin", str(FAKES)))
    assert "trust_remote_code" in line and "--trust-remote-code" in line
    toml = tmp_path / "run.toml"
    toml.write_text('method = "fake"\ntask = "fake/yes-no"\n[options]\ntrust_remote_code = true\n')
    line = one_line_error(promptopt("run", "--config", str(toml), "--plugin", str(FAKES)))
    assert "config file" in line and "--trust-remote-code" in line


# ----------------------------------------------------------------- 11. file modes


def test_run_files_follow_the_umask(tmp_path: Path) -> None:
    run = interrupted(tmp_path, 2)
    proc = promptopt("run", "--resume", str(run), "--plugin", str(FAKES))
    assert proc.returncode == 0, proc.stderr
    umask = os.umask(0)
    os.umask(umask)
    expected = 0o666 & ~umask
    for name in ("config.json", "checkpoint.json", "steps.jsonl", "result.json", "run.log"):
        assert stat.S_IMODE((run / name).stat().st_mode) == expected, name


# ----------------------------------------------------------------- 13, 14. initial prompts


def test_an_initial_prompt_is_joined_to_the_prefix_with_a_space(shared_data_dir: Path) -> None:
    proc = promptopt(
        "run", "greater", "--task", "bbh/navigate", "--data-dir", str(shared_data_dir),
        "-o", "initial_prompt=Think step by step.", "--dry-run",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["initial_prompt"] == "Use Think step by step."


def test_an_empty_initial_prompt_is_an_error_not_the_default(shared_data_dir: Path) -> None:
    line = one_line_error(
        promptopt(
            "run", "greater", "--task", "bbh/navigate", "--data-dir", str(shared_data_dir),
            "-o", "initial_prompt=", "--dry-run",
        )
    )  # fmt: skip
    assert "leaves nothing to edit" in line


def test_an_overlong_initial_prompt_fails_before_any_model_loads(
    shared_data_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    huge = "think " * 20_000
    proc = promptopt(
        "run", "greater", "--task", "bbh/navigate", "--data-dir", str(shared_data_dir),
        "--model", str(tmp_path / "no-such-model"), "--out", str(out),
        "-o", f"initial_prompt={huge}",
    )  # fmt: skip
    line = one_line_error(proc)  # the model path is bad too: the prompt is checked first
    assert "longer than 2000 characters" in line and len(line) < 400
    assert not out.exists()
