"""Write failures never leave a damaged file or a traceback: a full disk (a file-size limit
the kernel enforces, as ENOSPC would stop the same write) and immutable run and study folders,
through the real CLI on the fake components."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from test_core_reliability import FAKES, interrupted, one_line_error, promptopt
from test_study_fake import study

#: Bigger than every JSON file of a fake run or study, smaller than any of its PNG plots.
LIMIT = 16_000


def limited_writes() -> None:
    """In the child: writes past LIMIT bytes fail with EFBIG instead of killing the process."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, LIMIT))


def leftovers(folder: Path) -> list[str]:
    """Temporary files of interrupted atomic writes."""
    return sorted(p.name for p in folder.rglob(".*") if p.name != ".lock")


def test_a_full_disk_at_the_plot_leaves_a_resumable_run_and_no_truncated_image(
    tmp_path: Path,
) -> None:
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "promptopt", "run", "fake", "--task", "fake/yes-no",
         "--plugin", str(FAKES), "--out", str(out), "-o", "steps=3"],
        capture_output=True, text=True, timeout=300, preexec_fn=limited_writes,
        env={**os.environ, "PROMPTOPT_PROGRESS": "0"},
    )  # fmt: skip
    line = one_line_error(proc)
    assert f"could not write {str(out / 'losses.png')!r} (File too large)" in line
    assert f"promptopt run --resume {out}" in line
    assert not (out / "losses.png").exists() and not (out / "result.json").exists()
    assert leftovers(out) == []
    proc = promptopt("run", "--resume", str(out), "--plugin", str(FAKES))
    assert proc.returncode == 0, proc.stderr
    assert (out / "losses.png").stat().st_size > LIMIT and (out / "result.json").is_file()


def test_a_full_disk_at_a_study_plot_is_one_line_and_a_rerun_finishes(tmp_path: Path) -> None:
    out = tmp_path / "s"
    args = ["--methods", "fake", "--tasks", "fake/yes-no", "--seeds", "0", "-o", "steps=1"]
    command = [sys.executable, "-m", "promptopt", "study", *args, "--out", str(out)]
    plugin = tmp_path / "fakes_plugin.py"
    plugin.write_text("from promptopt.testing.fakes import *  # noqa: F403\n")
    proc = subprocess.run(
        [*command, "--plugin", str(plugin), "--no-progress"],
        capture_output=True, text=True, timeout=300, preexec_fn=limited_writes,
        env={**os.environ, "PROMPTOPT_CACHE_DIR": str(tmp_path / "cache")},
    )  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert "could not write" in last and ".png" in last and "rerun the same" in last
    assert not any(p.suffix == ".png" for p in out.iterdir()) or all(
        p.stat().st_size > 0 for p in out.glob("*.png")
    )
    assert leftovers(out) == []
    assert study(tmp_path, out, *args).returncode == 0
    assert (out / "accuracy.png").stat().st_size > LIMIT


@contextmanager
def immutable(folder: Path) -> Iterator[None]:
    """``chattr +i`` on ``folder`` (root ignores plain permissions; the immutable flag binds
    root too), removed afterwards."""
    made = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"chattr +i is not possible here: {made.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


def test_resuming_in_an_immutable_run_folder_is_one_line(tmp_path: Path) -> None:
    run = interrupted(tmp_path, 1)
    with immutable(run):
        line = one_line_error(promptopt("run", "--resume", str(run), "--plugin", str(FAKES)))
    assert str(run) in line and "Operation not permitted" in line
    proc = promptopt("run", "--resume", str(run), "--plugin", str(FAKES))
    assert proc.returncode == 0, proc.stderr  # nothing was damaged


def test_rerunning_a_study_in_an_immutable_folder_is_one_line(tmp_path: Path) -> None:
    out = tmp_path / "s"
    args = ["--methods", "fake", "--tasks", "fake/yes-no", "--seeds", "0", "-o", "steps=1"]
    assert study(tmp_path, out, *args).returncode == 0
    with immutable(out):
        proc = study(tmp_path, out, *args)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert str(out) in last and "Operation not permitted" in last
