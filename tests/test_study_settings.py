"""A study's settings under mistakes: evaluation settings checked before the first run,
operational options and seed order free between invocations, damaged store entries evaluated
again, and out-of-range seeds refused (each through the real CLI on the fake components)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_study_fake import invocation, study
from test_study_security import one_line

ARGS = ["--methods", "fake", "--tasks", "fake/yes-no", "--seeds", "0,1", "-o", "steps=1"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--transfer", "/etc/passwd"], "'/etc/passwd': '/etc/passwd' is not a GGUF file"),
        (["--transfer", "{folder}"], "is a folder without config.json, not a model"),
        (["--transfer", "q8_0", "--backend", "fake", "--model", "org/hub-model"], "quantizes"),
        (["--eval-option", "nope=1"], "--eval-option 'nope' is not an option of the 'fake'"),
        (["--eval-option", "fake_workers=0"], "fake_workers=0"),
        (
            ["--eval-backend", "openai", "--eval-model", "http://127.0.0.1:9/v1"],
            "127.0.0.1:9",
        ),
        (["--seeds", "99999999999999999999999"], "is not between 0 and 4294967295"),
    ],
)
def test_evaluation_mistakes_fail_before_the_first_run(
    tmp_path: Path, extra: list[str], message: str
) -> None:
    folder = tmp_path / "not-a-model"
    folder.mkdir()
    extra = [item.replace("{folder}", str(folder)) for item in extra]
    out = tmp_path / "s"
    args = (
        [*ARGS, "--eval-backend", "fake", *extra]
        if "--eval-backend" not in extra
        else [
            *ARGS,
            *extra,
        ]
    )
    line = one_line(study(tmp_path, out, *args))
    assert message in line, line
    assert not out.exists(), "something was written before the mistake was found"


def test_transfer_without_a_variant_provider_is_a_one_line_error(tmp_path: Path) -> None:
    out = tmp_path / "s"
    args = [*ARGS, "--eval-backend", "fake", "--transfer", "q8_0"]
    proc = study(tmp_path, out, *args, env={"PROMPTOPT_BLOCK_PLUGINS": "promptopt-llamacpp"})
    line = one_line(proc)
    assert "--transfer needs a plugin that provides model variants" in line, line
    assert "promptopt-llamacpp" in line
    assert not out.exists()


def test_operational_options_and_seed_order_do_not_change_the_study(tmp_path: Path) -> None:
    out = tmp_path / "s"
    first = [*ARGS, "-o", "fake_workers=1", "--eval-option", "fake_workers=2"]
    assert study(tmp_path, out, *first).returncode == 0
    again = [
        *ARGS[:5], "1,0", "-o", "steps=1", "-o", "fake_workers=4",
        "--eval-option", "fake_workers=8",
    ]  # fmt: skip
    proc = study(tmp_path, out, *again)
    assert proc.returncode == 0, proc.stderr
    counts = invocation(out)
    assert counts["runs_executed"] == 0 and counts["evaluations_computed"] == 0
    assert counts["evaluations_from_store"] > 0
    changed = [*ARGS, "-o", "fake_salt=x"]  # changes results: refused, naming it
    line = one_line(study(tmp_path, out, *changed))
    assert "-o:" in line and "fake_salt" in line


def test_a_damaged_store_entry_is_evaluated_again(tmp_path: Path) -> None:
    out = tmp_path / "s"
    assert study(tmp_path, out, *ARGS).returncode == 0
    report = json.loads((out / "report.json").read_text())
    entries = sorted((out / "evals").rglob("*.json"))
    assert entries
    damaged = json.loads(entries[0].read_text())
    damaged["value"].pop("outcomes")
    entries[0].write_text(json.dumps(damaged))
    second = json.loads(entries[1].read_text())
    for outcome in second["value"]["outcomes"]:
        outcome["example_id"] = "not-an-example"
    entries[1].write_text(json.dumps(second))
    proc = study(tmp_path, out, *ARGS)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("is damaged; evaluating it again") == 2
    assert invocation(out)["evaluations_computed"] == 2
    again = json.loads((out / "report.json").read_text())
    assert again["tasks"] == report["tasks"]
