"""Study v2 on the fake components: one shared test set per task, the training-label majority,
baselines and run-level statistics, several scorings, the hashed study record with --extend,
parser versions in the evaluation store, --export with re-rendering, and --pilot."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

#: The fakes plus ``fake/rows``: 40 rows in file order (train, then dev, then test, sized by
#: ``train_size``/``dev_size``), rows 0-11 all "No", later rows mostly "Yes" (so the training
#: majority differs from the test majority), and a second method ``fake2``.
PLUGIN = """
import os

from promptopt import hookimpl
from promptopt.components import ComponentOptions
from promptopt.testing.fakes import *  # noqa: F403
from promptopt.testing.fakes import FakeMethod, ListTask
from promptopt.types import Example

ROWS = [
    Example(f"r{i}", f"Is {i} big?", "No" if i < 12 or i % 5 == 0 else "Yes", ("Yes", "No"))
    for i in range(40)
]


class RowsOptions(ComponentOptions):
    train_size: int = 4
    dev_size: int = 2
    test_size: int | str | None = None  # None or "max": every row after dev


class RowsTask(ListTask):
    name = "fake/rows"
    Options = RowsOptions
    parser_version = os.environ.get("ROWS_PARSER", "1")

    def examples(self, split):
        t, d = self.options.train_size, self.options.dev_size
        lo, hi = {"train": (0, t), "dev": (t, t + d), "test": (t + d, len(ROWS))}[split]
        size = self.options.test_size
        if split == "test" and isinstance(size, int):
            hi = lo + size
        return ROWS[lo:hi]


class FakeMethod2(FakeMethod):
    name = "fake2"


@hookimpl
def register_tasks(register):
    register(ListTask)
    register(RowsTask)


@hookimpl
def register_methods(register):
    register(FakeMethod)
    register(FakeMethod2)
"""

GRID = [
    "--methods", "fake,fake2", "--tasks", "fake/rows", "--seeds", "0,1",
    "-o", "steps=1", "-o", "fake:train_size=3", "-o", "fake2:train_size=6", "-o", "dev_size=2",
]  # fmt: skip


def study(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    plugin = tmp_path / "rows_plugin.py"
    plugin.write_text(PLUGIN)
    environment = {
        **os.environ,
        "PROMPTOPT_CACHE_DIR": str(tmp_path / "cache"),
        "PROMPTOPT_PROGRESS": "0",
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "promptopt", "study", *args, "--plugin", str(plugin)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
    )


def ok(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 0, proc.stderr


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def report_of(out: Path) -> dict[str, Any]:
    return json.loads((out / "report.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """One finished study of two methods, two seeds and a user baseline prompt."""
    tmp = tmp_path_factory.mktemp("protocol")
    out = tmp / "s"
    ok(study(tmp, *GRID, "--baseline-prompt", "Answer with care.", "--out", str(out)))
    return tmp, out


def test_every_method_and_seed_is_tested_on_the_same_rows_after_all_train_and_dev(
    finished: tuple[Path, Path],
) -> None:
    _, out = finished
    report = report_of(out)
    assert len(report["test_sets"]) == 1
    (digest, test_set), *_ = report["test_sets"].items()
    # fake uses rows 0-4 (3 train + 2 dev), fake2 rows 0-7: the test starts at row 8
    assert test_set["test_from"] == 8
    assert test_set["example_ids"] == [f"r{i}" for i in range(8, 40)]
    assert {run["test_set"] for run in report["runs"]} == {digest}
    assert len(report["runs"]) == 4
    assert {r["best"]["n"] for r in report["runs"]} == {32}


def test_majority_baseline_comes_from_the_training_labels(finished: tuple[Path, Path]) -> None:
    _, out = finished
    test_set = next(iter(report_of(out)["test_sets"].values()))
    # every training row is "No"; most test rows are "Yes"
    assert test_set["majority_answer"] == "No"
    assert test_set["majority_source"] == "train"
    assert test_set["majority_from"] == 6  # the union of both methods' training rows
    assert test_set["majority"]["accuracy"] < 0.5
    assert "majority class (No, train labels)" in (out / "report.md").read_text()


def test_runs_are_compared_with_every_baseline_with_holm_and_seed_statistics(
    finished: tuple[Path, Path],
) -> None:
    _, out = finished
    report = report_of(out)
    test_set = next(iter(report["test_sets"].values()))
    assert test_set["prompts"]["prompt 1"]["prompt"] == "Answer with care."
    assert set(test_set["initials"]) == {"fake", "fake2"}
    for run in report["runs"]:
        other = "fake2" if run["method"] == "fake" else "fake"
        assert set(run["vs"]) == {"majority", "empty", "prompt 1", f"initial ({other})"}
        for comparison in [run["vs_initial"], *run["vs"].values()]:
            assert comparison["test"] == "mcnemar"
            assert comparison["p_value"] <= comparison["p_holm"] <= 1.0
        expected = all(
            c["delta"] > 0 and c["p_holm"] < 0.05 for c in [run["vs_initial"], *run["vs"].values()]
        )
        assert run["beats_baselines"] is expected
    # Holm over the four runs of the table: the smallest p is multiplied by 4 (capped at 1)
    ps = sorted(r["vs"]["majority"]["p_value"] for r in report["runs"])
    smallest = min(r["vs"]["majority"]["p_holm"] for r in report["runs"])
    assert smallest == pytest.approx(min(1.0, 4 * ps[0]))
    summary = report["tasks"]["fake/rows"]["methods"]["fake"]
    seeds = summary["over_seeds"]["majority"]
    deltas = [
        r["best"]["accuracy"] - test_set["majority"]["accuracy"]
        for r in report["runs"]
        if r["method"] == "fake"
    ]
    assert seeds["mean"] == pytest.approx(sum(deltas) / 2)
    assert seeds["better"] + seeds["worse"] + seeds["unchanged"] == 2
    pooled = summary["pooled"]["vs_initial"]
    assert pooled["examples"] == 32 and pooled["values"] == 64  # clusters: examples x seeds
    assert pooled["ci_low"] <= pooled["mean"] <= pooled["ci_high"]
    text = (out / "report.md").read_text()
    assert "McNemar p (Holm)" in text and "beats all baselines" in text
    assert "sign p" in text and "Δ [cluster 95% CI]" in text


def test_the_record_holds_the_code_version_a_hash_and_every_invocation(
    finished: tuple[Path, Path],
) -> None:
    _, out = finished
    record = json.loads((out / "study.json").read_text())
    assert record["version"] == 2 and len(record["hash"]) == 64
    assert "git" in record["code_version"] or "distributions" in record["code_version"]
    assert report_of(out)["code_version"] == record["code_version"]
    lines = [json.loads(x) for x in (out / "invocations.jsonl").read_text().splitlines()]
    assert lines[0]["action"] == "run" and "--baseline-prompt" in lines[0]["argv"]
    assert "time" in lines[0] and "code_version" in lines[0]


def test_test_from_moves_the_test_rows_and_refuses_overlap(tmp_path: Path) -> None:
    line = one_line_error(study(tmp_path, *GRID, "--test-from", "6", "--out", str(tmp_path / "a")))
    assert "shares 2 rows with the dev rows of method 'fake2'" in line  # rows 6-7
    assert "--test-from 8" in line
    assert not (tmp_path / "a").exists()
    out = tmp_path / "b"
    ok(study(tmp_path, *GRID, "--seeds", "0", "--test-from", "30", "--out", str(out)))
    test_set = next(iter(report_of(out)["test_sets"].values()))
    assert test_set["example_ids"] == [f"r{i}" for i in range(30, 40)]


def test_test_limit_sizes_the_shared_test_set_whatever_the_runs_test_size(
    tmp_path: Path,
) -> None:
    """The runs' own test_size (3 here; a BBH task's default is 100) does not cap the study's
    test set: --test-limit takes that many rows from the test start."""
    grid = [*GRID[:4], "--seeds", "0", *GRID[6:], "-o", "test_size=3", "--test-from", "30"]
    ok(study(tmp_path, *grid, "--test-limit", "5", "--out", str(tmp_path / "five")))
    test_set = next(iter(report_of(tmp_path / "five")["test_sets"].values()))
    assert test_set["example_ids"] == [f"r{i}" for i in range(30, 35)]
    ok(study(tmp_path, *grid, "--out", str(tmp_path / "own")))  # no limit: the task's own size
    test_set = next(iter(report_of(tmp_path / "own")["test_sets"].values()))
    assert test_set["example_ids"] == ["r30", "r31", "r32"]


def test_edited_study_json_is_refused_and_extend_grows_the_grid(tmp_path: Path) -> None:
    out = tmp_path / "s"
    grid = [*GRID[:4], "--seeds", "0", *GRID[6:]]
    ok(study(tmp_path, *grid, "--out", str(out)))
    path = out / "study.json"
    original = path.read_text()
    edited = json.loads(original)
    edited["settings"]["seeds"] = [0, 1]
    path.write_text(json.dumps(edited))
    line = one_line_error(study(tmp_path, *grid, "--out", str(out)))
    assert "edited by hand" in line and "--extend" in line
    path.write_text(original)

    ok(study(tmp_path, "--extend", "--seeds", "2", "--out", str(out)))
    record = json.loads(path.read_text())
    assert record["settings"]["seeds"] == [0, 2]
    lines = [json.loads(x) for x in (out / "invocations.jsonl").read_text().splitlines()]
    assert [x["action"] for x in lines] == ["run", "extend"]
    assert lines[1]["added"] == {"methods": [], "tasks": [], "seeds": [2]}
    assert sorted({r["seed"] for r in report_of(out)["runs"]}) == [0, 2]
    assert (out / "runs/fake2/fake/rows/seed2/result.json").is_file()
    # the recorded study continues with no grid flags
    ok(study(tmp_path, "--out", str(out)))
    assert json.loads((out / "last_invocation.json").read_text())["runs_executed"] == 0


def test_both_scorings_in_one_study(tmp_path: Path) -> None:
    out = tmp_path / "s"
    grid = [*GRID[:4], "--seeds", "0", *GRID[6:]]
    ok(study(tmp_path, *grid, "--scoring", "generate,logprob", "--out", str(out)))
    report = report_of(out)
    assert report["evaluation"]["scoring"] == "generate"
    other = report["other_scorings"]["logprob"]
    assert other["evaluation"]["scoring"] == "logprob"
    assert [r["index"] for r in other["runs"]] == [r["index"] for r in report["runs"]]
    assert all(r["best"]["unparsed"] == 0 for r in other["runs"])  # an option is always chosen
    assert "## Scoring `logprob`" in (out / "report.md").read_text()


def test_a_parser_change_rescores_stored_outputs_and_says_so(tmp_path: Path) -> None:
    out = tmp_path / "s"
    grid = [*GRID[:4], "--seeds", "0", *GRID[6:]]
    ok(study(tmp_path, *grid, "--out", str(out)))
    entries = [json.loads(p.read_text()) for p in (out / "evals").rglob("*.json")]
    assert entries and {e["value"]["parser_version"] for e in entries} == {"1"}
    assert report_of(out)["evaluation"]["rescored"] == []
    proc = study(tmp_path, *grid, "--out", str(out), env={"ROWS_PARSER": "2"})
    ok(proc)
    rescored = report_of(out)["evaluation"]["rescored"]
    assert rescored and all("parser 1 -> 2" in item for item in rescored)
    assert any("fake fake/rows seed 0: best" in item for item in rescored)
    assert "## Re-scored" in (out / "report.md").read_text()
    assert json.loads((out / "last_invocation.json").read_text())["evaluations_computed"] == 0


def test_export_holds_the_evidence_and_re_renders_the_same_report(
    finished: tuple[Path, Path],
) -> None:
    tmp, out = finished
    export = tmp / "export"
    ok(study(tmp, "--out", str(out), "--export", str(export)))
    names = {str(p.relative_to(export)) for p in export.rglob("*") if p.is_file()}
    for name in ("study.json", "invocations.jsonl", "report.md", "report.json"):
        assert name in names
    run = "runs/fake/fake/rows/seed0/"
    assert {run + "config.json.gz", run + "result.json.gz", run + "steps.jsonl.gz"} <= names
    assert not any("checkpoint" in n for n in names)
    with gzip.open(export / (run + "result.json.gz"), "rt") as handle:
        assert "best_prompt" in json.load(handle)
    assert json.loads((export / "study.json").read_text())["export"]
    assert "/" + str(tmp).strip("/") not in (export / "study.json").read_text()  # no abs paths
    before = report_of(export)
    (export / "report.json").unlink()
    ok(study(tmp, "--out", str(export)))
    after = report_of(export)
    before.pop("study_hash"), after.pop("study_hash")
    assert after == before
    lines = [json.loads(x) for x in (export / "invocations.jsonl").read_text().splitlines()]
    assert lines[-2]["action"] == "export" and lines[-1]["action"] == "render"
    line = one_line_error(study(tmp, "--out", str(export), "--extend", "--seeds", "5"))
    assert "is an export" in line
    line = one_line_error(study(tmp, *GRID, "--baseline-prompt", "x", "--out", str(export)))
    assert "is an export" in line  # a full command never starts runs in an export


def test_pilot_measures_baselines_on_dev_rows_only(tmp_path: Path) -> None:
    out = tmp_path / "s"
    (tmp_path / "data").mkdir()
    data = str(tmp_path / "data")
    pilot_flags = ["--pilot", "--baseline-prompt", "Be exact.", "--data-dir", data]
    ok(study(tmp_path, *GRID, *pilot_flags, "--out", str(out)))
    pilot = json.loads((out / "pilot" / "pilot.json").read_text())
    assert pilot["split"] == "dev"
    assert pilot["settings"]["data_dir"] == "../../data"  # relative to the pilot folder
    assert pilot["relative_paths"] == ["data_dir"]
    rows = pilot["tasks"]["fake/rows"]["generate"]
    assert pilot["tasks"]["fake/rows"]["generate"]["n"] == 2  # fake's dev rows 3-4
    assert set(rows["rows"]) == {
        "majority class (No, train labels)",
        "empty prompt",
        "prompt 1",
        "initial prompt (fake)",
        "initial prompt (fake2)",
    }
    assert not (out / "study.json").exists() and not (out / "runs").exists()
    ok(study(tmp_path, *GRID, "--seeds", "0", "--out", str(out)))  # the study may start there
    assert (out / "report.json").is_file()


def test_study_paths_are_stored_relative_and_resolved_back(tmp_path: Path) -> None:
    from promptopt.studies.plan import StudySettings
    from promptopt.studies.record import read_study_file, write_study_file

    data = tmp_path / "data"
    data.mkdir()
    table = data / "mine.csv"
    table.write_text("question,answer\nq,a\n")
    root = tmp_path / "studies" / "one"
    root.mkdir(parents=True)
    settings = StudySettings(
        methods=["fake"], tasks=["fake/yes-no", str(table)], seeds=[0], data_dir=str(data)
    )
    write_study_file(root, settings)
    record = json.loads((root / "study.json").read_text())
    assert record["settings"]["data_dir"] == "../../data"
    assert record["settings"]["tasks"] == ["fake/yes-no", "../../data/mine.csv"]
    assert record["relative_paths"] == ["data_dir", "tasks/1"]
    assert str(tmp_path) not in (root / "study.json").read_text()
    assert read_study_file(root) == settings
