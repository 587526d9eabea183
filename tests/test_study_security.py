"""A study folder from elsewhere never decides what runs, and credentials in a model URL never
reach a file or a message: planted run folders, URLs with passwords, two studies at once, a
study.json of another format (each through the real CLI)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from test_study_fake import FAKES, study

ARGS = ["--methods", "fake", "--tasks", "fake/yes-no", "--seeds", "0", "-o", "steps=1"]


def one_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


def remote_code_folder(tiny_model_dir: Path, root: Path, marker: Path) -> Path:
    """A model folder whose config maps AutoConfig to its own Python file, which writes
    ``marker`` when imported (what a hostile folder's code could do instead)."""
    folder = root / "evil-model"
    shutil.copytree(tiny_model_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(
        model_type="evilllama",
        auto_map={"AutoConfig": "configuration_evil.EvilConfig"},
    )
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "configuration_evil.py").write_text(
        "from pathlib import Path\n"
        "from transformers import LlamaConfig\n\n"
        f"Path({str(marker)!r}).write_text('the planted code ran')\n\n\n"
        "class EvilConfig(LlamaConfig):\n"
        "    model_type = 'evilllama'\n"
    )
    return folder


def test_a_planted_run_folder_cannot_run_model_code(tiny_model_dir: Path, tmp_path: Path) -> None:
    """A started run inside a study whose config.json names a model folder with its own code
    and turns trust_remote_code on: the study refuses it in one line, and the code never runs."""
    marker = tmp_path / "marker.txt"
    evil = remote_code_folder(tiny_model_dir, tmp_path, marker)
    out = tmp_path / "study"
    args = [*ARGS, "--backend", "hf"]
    # a study on the hf backend with the default model, whose single run is "started"
    out.mkdir()
    settings = {
        "methods": ["fake"], "tasks": ["fake/yes-no"], "seeds": [0], "model": None,
        "backend": "hf", "optimizer_model": None, "optimizer_backend": None,
        "options": {"steps": 1}, "data_dir": None, "eval_backend": None, "eval_model": None,
        "eval_options": {}, "eval_max_new_tokens": None, "test_limit": None,
        "scorings": ["generate"], "transfer": [],
    }  # fmt: skip
    from promptopt.studies.plan import StudySettings
    from promptopt.studies.record import write_study_file

    write_study_file(out, StudySettings(**settings))
    run = out / "runs" / "fake" / "fake" / "yes-no" / "seed0"
    run.mkdir(parents=True)
    planted = {
        "method": "fake", "task": "fake/yes-no", "backend": "hf", "model": str(evil),
        "seed": 0, "options": {"steps": 1, "trust_remote_code": True}, "components": {},
    }  # fmt: skip
    (run / "config.json").write_text(json.dumps(planted))
    line = one_line(study(tmp_path, out, *args))
    assert "model=" in line and str(evil) in line and "study expects" in line
    assert not marker.exists(), "the planted model code ran"

    # the same folder with the study's model but the planted option: refused as well
    planted["model"] = None
    (run / "config.json").write_text(json.dumps(planted))
    line = one_line(study(tmp_path, out, *args))
    assert "option trust_remote_code=True" in line
    assert not marker.exists()


def test_a_finished_run_of_another_model_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "s"
    assert study(tmp_path, out, *ARGS).returncode == 0
    config_path = out / "runs/fake/fake/yes-no/seed0/config.json"
    config = json.loads(config_path.read_text())
    config["model"] = "someone-elses-model"
    config_path.write_text(json.dumps(config))
    line = one_line(study(tmp_path, out, *ARGS))
    assert "model='someone-elses-model'" in line and "(default)" in line


def test_credentials_in_a_model_url_are_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    out = tmp_path / "s"
    url = "http://user:s3cretPW@127.0.0.1:9/v1"
    for flag in ("--model", "--eval-model", "--optimizer-model"):
        args = [*ARGS, "--backend", "fake", flag, url]
        proc = study(tmp_path, out, *args)
        line = one_line(proc)
        assert "carries credentials" in line and flag in line
        assert "s3cretPW" not in proc.stderr + proc.stdout
        assert not out.exists()
    upper = "HTTP://user:s3cretPW@127.0.0.1:9/v1?api_key=k3yK3y"
    proc = study(tmp_path, out, *ARGS, "--model", upper)
    assert "s3cretPW" not in proc.stderr and "k3yK3y" not in proc.stderr
    assert not out.exists()
    run = subprocess.run(
        [sys.executable, "-m", "promptopt", "run", "fake", "--task", "fake/yes-no",
         "--plugin", str(FAKES), "--model", url, "--out", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 2 and "s3cretPW" not in run.stderr
    assert not (tmp_path / "run").exists()


def test_a_study_on_an_unreachable_openai_url_with_a_password(tmp_path: Path) -> None:
    """A study on an openai URL with a password that cannot be reached: exit 2, and the
    password is nowhere (stderr, DIR)."""
    out = tmp_path / "DIR"
    proc = subprocess.run(
        [sys.executable, "-m", "promptopt", "study", "--methods", "gpo", "--tasks",
         "bbh/navigate", "--seeds", "0", "--backend", "openai", "--model",
         "http://user:s3cretPW@127.0.0.1:9/v1", "--out", str(out)],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "PROMPTOPT_PROGRESS": "0"},
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "s3cretPW" not in proc.stderr + proc.stdout
    found = [p for p in out.rglob("*") if p.is_file() and "s3cretPW" in p.read_text()]
    assert not found


HOLD = (
    "from promptopt.testing.fakes import *  # noqa: F403\n"
    "import os, signal\n"
    "from promptopt import hookimpl\n\n\n"
    "@hookimpl\n"
    "def step_end(run, record):\n"
    "    if os.environ.get('STUDY_HOLD'):\n"
    "        os.kill(os.getpid(), signal.SIGSTOP)\n"
)


def test_a_second_study_on_the_same_folder_is_told_the_study_is_in_use(tmp_path: Path) -> None:
    out = tmp_path / "s"
    plugin = tmp_path / "hold.py"
    plugin.write_text(HOLD)
    first = subprocess.Popen(
        [sys.executable, "-m", "promptopt", "study", *ARGS, "--plugin", str(plugin),
         "--out", str(out)],
        stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PROMPTOPT_PROGRESS": "0", "STUDY_HOLD": "1",
             "PROMPTOPT_CACHE_DIR": str(tmp_path / "cache")},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # held (stopped) inside its first run
            with open(f"/proc/{first.pid}/stat") as handle:
                if handle.read().split(")")[-1].split()[0] == "T":
                    break
            time.sleep(0.1)
        else:
            raise AssertionError("the first study never reached its first step")
        line = one_line(study(tmp_path, out, *ARGS))
        assert f"study {str(out)!r} is in use by process {first.pid}" in line
        assert "--resume" not in line
    finally:
        first.send_signal(signal.SIGCONT)
        first.kill()
        first.wait()


def test_a_study_file_of_another_format_version_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "s"
    assert study(tmp_path, out, *ARGS).returncode == 0
    data = json.loads((out / "study.json").read_text())
    data["version"] = 99
    (out / "study.json").write_text(json.dumps(data))
    line = one_line(study(tmp_path, out, *ARGS))
    from promptopt.studies.plan import STUDY_VERSION

    assert "format version 99" in line and f"reads version {STUDY_VERSION}" in line
