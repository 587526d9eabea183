"""The study's report and plot writers on synthetic evaluations, and reading a run's cost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from promptopt.studies.cost import Cost, read_cost
from promptopt.studies.plan import StudySettings
from promptopt.studies.plots import write_plots
from promptopt.studies.report import write_reports
from promptopt.studies.results import HeldOutSet, RunEvaluation, Scored, StudyEvaluation
from promptopt.studies.summary import build_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def scored(bits: str, prompt: str | None = "p", unparsed: int = 0) -> Scored:
    return Scored(tuple(c == "1" for c in bits), unparsed, prompt)


def synthetic() -> tuple[StudyEvaluation, StudySettings]:
    """Two methods on two tasks, two seeds; one run gets worse, one has no recorded cost."""
    settings = StudySettings(
        methods=["greater", "gpo"],
        tasks=["bbh/navigate", "bbh/web_of_lies"],
        seeds=[0, 1],
        test_limit=12,
        transfer=["q8_0"],
    )
    sets = {
        "nav": HeldOutSet(
            "nav",
            "bbh/navigate",
            tuple(f"n{i}" for i in range(12)),
            16,
            "No",
            scored("010101010101", ""),
            scored("110011001111", None),
            {"q8_0": scored("000000000001", "")},
        ),
        "wol": HeldOutSet(
            "wol",
            "bbh/web_of_lies",
            tuple(f"w{i}" for i in range(12)),
            16,
            "Yes",
            scored("000000111111", "", unparsed=4),
            scored("101010101010", None),
        ),
    }
    initial = "Use proper logical reasoning."
    runs = []
    bests = {
        ("greater", "bbh/navigate", 0): "111111111111",  # clearly better than initial
        ("greater", "bbh/navigate", 1): "000000000001",  # clearly worse: must still be listed
        ("greater", "bbh/web_of_lies", 0): "110000111111",
        ("greater", "bbh/web_of_lies", 1): "010000111111",
        ("gpo", "bbh/navigate", 0): "010101010100",
        ("gpo", "bbh/navigate", 1): "010101010111",
        ("gpo", "bbh/web_of_lies", 0): "100000111111",
        ("gpo", "bbh/web_of_lies", 1): "000000111111",
    }
    for index, ((method, task, seed), bits) in enumerate(bests.items(), start=1):
        test_set = "nav" if task == "bbh/navigate" else "wol"
        init_bits = "010101010101" if test_set == "nav" else "000000111111"
        cost = (
            Cost("compute", seconds=100.0 * index, generated_tokens=1000 * index, forward_passes=3)
            if index != 4
            else Cost("none")
        )
        runs.append(
            RunEvaluation(
                index=index,
                method=method,
                task=task,
                seed=seed,
                path=f"runs/{method}/{task}/seed{seed}",
                test_set=test_set,
                best=scored(bits, f"Use prompt {index}"),
                initial=scored(init_bits, initial, unparsed=1),
                cost=cost,
                result={"steps_run": 2},
                transfer={"q8_0": (scored(bits[::-1], "b"), scored(init_bits, initial))},
            )
        )
    return StudyEvaluation(runs, sets, "llamacpp", None, "generate", ["q8_0"]), settings


def test_report_json_has_every_run_with_paired_counts_and_baselines(tmp_path: Path) -> None:
    evaluation, settings = synthetic()
    report = build_report(evaluation, settings)
    paths = write_reports(report, tmp_path)
    data = json.loads(paths["report.json"].read_text(encoding="utf-8"))
    assert len(data["runs"]) == 8
    first = data["runs"][0]
    assert first["vs_initial"]["only_a"] == 6 and first["vs_initial"]["only_b"] == 0
    assert first["vs_initial"]["both_correct"] == 6 and first["vs_initial"]["both_wrong"] == 0
    assert first["vs_initial"]["delta"] == pytest.approx(0.5)
    assert first["vs_initial"]["p_value"] == pytest.approx(2 / 64)
    assert first["best"]["correctness"] == "111111111111"
    assert first["best"]["ci_low"] <= first["best"]["accuracy"] <= first["best"]["ci_high"]
    assert first["transfer"]["q8_0"]["vs_initial"]["n"] == 12
    worse = data["runs"][1]
    assert (worse["vs_initial"]["only_a"], worse["vs_initial"]["only_b"]) == (0, 5)
    assert worse["vs_initial"]["delta"] == pytest.approx(-5 / 12)
    nav = data["tasks"]["bbh/navigate"]["methods"]["greater"]
    assert nav["runs"] == 2 and nav["seeds"] == [0, 1]
    assert (nav["improved"], nav["worse"]) == (1, 0)  # seed 1's loss has p = 0.0625
    assert nav["delta"]["mean"] == pytest.approx((0.5 - 5 / 12) / 2)
    assert (nav["delta"]["min"], nav["delta"]["max"]) == (pytest.approx(-5 / 12), 0.5)
    assert data["test_sets"]["wol"]["empty"]["unparsed"] == 4
    assert data["overall"]["majority"]["n"] == 24
    assert data["overall"]["methods"]["gpo"]["cost"]["seconds"] == pytest.approx(
        100.0 * (5 + 6 + 7 + 8)
    )


def test_report_is_deterministic(tmp_path: Path) -> None:
    evaluation, settings = synthetic()
    write_reports(build_report(evaluation, settings), tmp_path / "a")
    write_reports(build_report(evaluation, settings), tmp_path / "b")
    for name in ("report.md", "report.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_report_markdown_lists_every_run_baselines_and_transfer(tmp_path: Path) -> None:
    evaluation, settings = synthetic()
    text = write_reports(build_report(evaluation, settings), tmp_path)["report.md"].read_text(
        encoding="utf-8"
    )
    assert "## Overall" in text and "## bbh/navigate" in text and "## bbh/web_of_lies" in text
    for method in ("greater", "gpo"):
        for seed in (0, 1):
            assert text.count(f"| {method} seed {seed} |") == 4  # task and transfer tables
        assert f"| initial prompt ({method}) |" in text
    assert text.count("| majority class (No, train labels) |") == 1
    assert text.count("| majority class (Yes, train labels) |") == 1
    # two task tables, two transfer tables and the overall table
    assert text.count("| empty prompt |") == 5
    assert "| empty prompt | 50.0 | 8.3 |" in text  # navigate: main model, then q8_0
    # the run that got worse is shown with its negative gain
    assert "| greater seed 1 | 1 | 8.3 [0.0, 25.0] | -41.7 [" in text
    # seed 0 of greater on navigate: +50 points, exact McNemar p = 2/64
    assert "| greater seed 0 | 0 | 100.0 [100.0, 100.0] | +50.0 [" in text
    assert "| 0.031 (0.125) |" in text  # Holm-adjusted over the four runs of the table
    assert "greater: mean ± std (min–max) over seeds" in text
    assert "n/a" in text  # the run without a recorded cost
    assert "Transfer (bbh/navigate)" in text and "| q8_0 |" in text


def test_plots_are_written_as_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    evaluation, settings = synthetic()
    paths = write_plots(build_report(evaluation, settings), tmp_path)
    assert sorted(p.name for p in paths) == ["accuracy.png", "gain_vs_compute.png"]
    import matplotlib.image

    for path in paths:
        assert path.read_bytes()[:8] == PNG_MAGIC
        height, width = matplotlib.image.imread(path).shape[:2]
        assert width > 300 and height > 200


def test_cost_from_compute_record(tmp_path: Path) -> None:
    result = {
        "compute": {
            "seconds": 12.5,
            "phases": {"reasoning": 10.0},
            "models": {
                "task": {"prompt_tokens": 100, "generated_tokens": 40, "forward_passes": 3},
                "optimizer": {"prompt_tokens": 10, "generated_tokens": 5, "backward_passes": 2},
            },
            "peak_rss_mb": 512.0,
            "cuda_peak_mb": None,
        }
    }
    cost = read_cost(tmp_path, result)
    assert cost.source == "compute" and cost.seconds == 12.5
    assert (cost.prompt_tokens, cost.generated_tokens) == (110, 45)
    assert (cost.forward_passes, cost.backward_passes) == (3, 2)
    assert cost.peak_rss_mb == 512.0 and cost.cuda_peak_mb is None
    assert cost.short() == "12 s, 45 gen tok, 3 fwd / 2 bwd"


def test_cost_without_compute_falls_back_to_step_timings(tmp_path: Path) -> None:
    lines = [{"step": 0, "timings": {"step": 1.5}}, {"step": 1, "timings": {"step": 2.0}}]
    (tmp_path / "steps.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    cost = read_cost(tmp_path, {"finalize_seconds": 0.5})
    assert cost.source == "step timings" and cost.seconds == pytest.approx(4.0)
    assert cost.short() == "4.0 s (steps)"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert read_cost(empty, {}).source == "none" and read_cost(empty, {}).short() == "n/a"
