"""``promptopt run gpo --dry-run`` shows T, the budget schedule and the first meta-prompt without
a model; ``promptopt methods`` lists gpo with its defaults."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from promptopt.cli import main


def cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    try:
        main(args)
    except SystemExit as exc:
        assert exc.code in (0, None), capsys.readouterr().err
    return capsys.readouterr().out


def dry_run(capsys: pytest.CaptureFixture[str], data: Path, *args: str) -> dict[str, Any]:
    out = cli(["run", "gpo", "--data-dir", str(data), "--dry-run", *args], capsys)
    return dict(json.loads(out))


def test_dry_run_prints_the_first_meta_prompt_without_a_model(
    capsys: pytest.CaptureFixture[str], shared_data_dir: Path
) -> None:
    plan = dry_run(capsys, shared_data_dir, "--task", "bbh/navigate")
    assert plan["components"]["backend"] == "llamacpp" and plan["model"] is None
    assert plan["steps_T"] == 18
    assert plan["budget_schedule"][:3] == [49, 48, 47] and len(plan["budget_schedule"]) == 18
    meta = "\n".join(plan["first_meta_prompt"])
    assert meta.startswith("Your task is to write a prompt to replace <Prompt>.")
    assert "Prompt: Let's think step by step.\nScore: unknown" in meta
    assert "You are allowed to change up to 49 words in the current prompt." in meta
    assert meta.count("\n<Prompt>\nOutput:\n") == 3
    assert plan["initial_prompt"] == "Let's think step by step."
    assert plan["options"]["proposer"]["samples"] == {"value": 8, "source": "method"}


def test_dry_run_follows_the_shared_options_and_the_seed(
    capsys: pytest.CaptureFixture[str], shared_data_dir: Path
) -> None:
    gsm = dry_run(capsys, shared_data_dir, "--task", "gsm8k")
    assert gsm["steps_T"] == 39
    short = dry_run(capsys, shared_data_dir, "--task", "gsm8k", "-o", "steps=2",
                    "-o", "exemplars=1", "-o", "initial_prompt=Solve it.")  # fmt: skip
    assert short["budget_schedule"] == [30, 10]
    assert short["options"]["proposer"]["steps"] == {"value": 2, "source": "user"}
    meta = "\n".join(short["first_meta_prompt"])
    assert meta.count("Input:\n") == 1 and "The current prompt is:\nSolve it." in meta
    other = dry_run(capsys, shared_data_dir, "--task", "gsm8k", "--seed", "3")
    assert other["exemplars"] != gsm["exemplars"]


def test_methods_lists_gpo_with_its_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    out = cli(["methods"], capsys)
    block = out[out.index("gpo:") :]
    assert "backend=llamacpp proposer=gpo reasoner=none loss_extractor=gpo selector=gpo" in block
    assert "budget_max=50" in block and "steps=None" in block  # None: T from the train size
    assert (
        "proposer defaults: k=3, optimizer_max_tokens=512, retrieval=relevance, samples=8" in block
    )
    assert "loss extractor defaults: max_new_tokens=256" in block
