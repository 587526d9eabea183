"""The examples of docs/your-own-task.md and docs/python-api.md run as written: every block
marked ``<!-- doc-test: run -->`` runs in order (bash through ``bash -e``, Python through the
interpreter) in one folder holding the doc's ``sports.csv``, built here from BIG-Bench Hard's
``sports_understanding``; ``<!-- doc-test: file NAME -->`` blocks are written there first. The
model is the embedded SmolLM2-135M, as a reader would run them."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
MARKED_BLOCK = re.compile(
    r"<!-- doc-test: (?P<what>run|file (?P<name>\S+)) -->\n```(?P<lang>\w+)\n(?P<body>.*?)```",
    re.DOTALL,
)
SPORTS_ROWS = 120


@dataclass(frozen=True)
class Block:
    """A marked fenced block of a doc: code to run, or a file to write (``name``)."""

    lang: str
    body: str
    name: str | None


def marked_blocks(doc: Path) -> list[Block]:
    """The doc's marked blocks, in order."""
    return [Block(m["lang"], m["body"], m["name"]) for m in MARKED_BLOCK.finditer(doc.read_text())]


def write_sports_csv(bbh_file: Path, out: Path) -> None:
    """``sentence,verdict`` rows (plausible/implausible) from the BBH task's first 120."""
    examples = json.loads(bbh_file.read_text())["examples"][:SPORTS_ROWS]
    with out.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sentence", "verdict"])
        for example in examples:
            sentence = example["input"].split('"')[1]
            writer.writerow(
                [sentence, "plausible" if example["target"] == "yes" else "implausible"]
            )


@pytest.fixture()
def doc_folder(tmp_path: Path, shared_data_dir: Path, smollm2: Path) -> Path:
    """A working folder with sports.csv, a private cache and the embedded model available."""
    write_sports_csv(shared_data_dir / "bbh" / "sports_understanding.json", tmp_path / "sports.csv")
    return tmp_path


def run_blocks(doc: Path, folder: Path) -> list[str]:
    """Run the doc's blocks in ``folder``; the stdout of each run block, in order."""
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PROMPTOPT_CACHE_DIR": str(folder / "cache"),
        "HF_HUB_OFFLINE": "1",
        "PROMPTOPT_PROGRESS": "0",
    }
    outputs = []
    for block in marked_blocks(doc):
        if block.name is not None:
            (folder / block.name).write_text(block.body)
            continue
        command = ["bash", "-e", "-c", block.body] if block.lang == "bash" else [sys.executable]
        done = subprocess.run(
            command,
            input=block.body if block.lang == "python" else None,
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert done.returncode == 0, (
            f"{doc.name} block failed ({done.returncode}):\n{block.body}\n"
            f"stdout: {done.stdout[-2000:]}\nstderr: {done.stderr[-3000:]}"
        )
        outputs.append(done.stdout)
    return outputs


def json_objects(text: str) -> list[dict]:
    """Every top-level JSON object printed in ``text`` (the CLI prints them indented)."""
    decoder = json.JSONDecoder()
    found, index = [], text.find("{")
    while index != -1:
        value, end = decoder.raw_decode(text, index)
        found.append(value)
        index = text.find("{", end)
    return found


def test_your_own_task_doc_runs_as_written(doc_folder: Path) -> None:
    doc = REPO_ROOT / "docs" / "your-own-task.md"
    kinds = [(b.lang, b.name) for b in marked_blocks(doc)]
    assert kinds.count(("bash", None)) == 5 and kinds.count(("python", None)) == 2
    assert ("python", "verdict_metric.py") in kinds
    dry, before, _run, after, first_python, table_python, graded = run_blocks(doc, doc_folder)

    details = json_objects(dry)[0]["task_details"]
    assert details["answer_type"] == "choice"
    assert details["labels"] == ["implausible", "plausible"] and details["rows"] == SPORTS_ROWS
    for printed in (before, after):
        summary = json_objects(printed)[0]
        assert summary["n"] == 8
        assert 0.0 <= summary["ci_low"] <= summary["accuracy"] <= summary["ci_high"] <= 1.0
    result = json.loads((doc_folder / "runs" / "sports" / "result.json").read_text())
    assert json_objects(after)[0]["prompt"] == result["best_prompt"]

    words = first_python.split()
    score, low, high = float(words[-3]), float(words[-2].strip("(,")), float(words[-1].strip(")"))
    assert 0.0 <= low <= score <= high <= 1.0
    score_text, *_ = table_python.split()
    assert 0.0 <= float(score_text) <= 1.0
    graded_summary = json_objects(graded)[0]
    assert graded_summary["metric"] == "python:verdict_metric.py:single_verdict"
    assert graded_summary["n"] == 4
    mean = graded_summary.get("score", graded_summary.get("accuracy"))
    assert 0.0 <= graded_summary["ci_low"] <= mean <= graded_summary["ci_high"] <= 1.0


def test_python_api_doc_runs_as_written(doc_folder: Path) -> None:
    doc = REPO_ROOT / "docs" / "python-api.md"
    (errors,) = run_blocks(doc, doc_folder)
    assert "no column 'nope'" in errors
    assert "sentence, verdict" in errors
