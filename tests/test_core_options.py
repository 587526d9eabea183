"""Option routing through the real CLI: scoped keys, bare keys with one or several takers,
method defaults that never leak into a replacement component, the dry run, and model roles."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

FAKES = Path(__file__).parent / "data" / "fakes_plugin.py"


def promptopt(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "promptopt", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PROMPTOPT_PROGRESS": "0", **(env or {})},
        timeout=300,
    )


def dry_run(*args: str) -> dict:
    proc = promptopt("run", *args, "--dry-run")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_a_scoped_key_reaches_only_its_component(shared_data_dir: Path) -> None:
    plan = dry_run(
        "greater", "--task", "bbh/navigate", "--data-dir", str(shared_data_dir),
        "-o", "selector.keep=5",
    )  # fmt: skip
    assert plan["options"]["selector"]["keep"] == {"value": 5, "source": "user"}
    others = [scope for scope, opts in plan["options"].items() if "keep" in opts]
    assert others == ["selector"]
    assert plan["options"]["selector"]["shortlist"] == {"value": 3, "source": "method"}
    assert plan["options"]["proposer"]["batch_size"]["source"] == "default"
    assert plan["options"]["backend"]["seed"] == {"value": 0, "source": "run"}


def test_a_bare_key_with_several_takers_names_them(shared_data_dir: Path) -> None:
    line = one_line_error(
        promptopt(
            "run", "greater", "--task", "bbh/navigate", "--data-dir", str(shared_data_dir),
            "-o", "batch_size=4", "--dry-run",
        )
    )  # fmt: skip
    assert "'batch_size' is declared by several components" in line
    for taker in ("reasoner 'greater'", "proposer 'greater'", "loss extractor 'greater'", "'hf'"):
        assert taker in line
    assert "scope it, e.g. -o backend.batch_size=" in line


def test_bare_keys_with_one_taker_and_shared_keys(shared_data_dir: Path) -> None:
    plan = dry_run(
        "greater", "--task", "bbh/navigate", "--data-dir", str(shared_data_dir),
        "-o", "train_size=4", "-o", "reference_mode=true", "-o", "proposer.batch_size=2",
    )  # fmt: skip
    assert plan["options"]["task"]["train_size"]["value"] == 4
    assert plan["splits"]["train"] == 4
    for scope in ("reasoner", "proposer", "loss_extractor"):
        assert plan["options"][scope]["reference_mode"] == {"value": True, "source": "user"}
    assert plan["options"]["proposer"]["batch_size"]["value"] == 2
    assert plan["options"]["reasoner"]["batch_size"]["value"] == 8


@pytest.mark.parametrize(
    ("option", "needle"),
    [
        ("nope.keep=5", "names no component of this run ('nope')"),
        ("selector.topk=5", "'topk' is not an option of selector 'greater'"),
        ("no_such_key=1", "unknown option 'no_such_key'"),
    ],
)
def test_bad_keys_are_one_line_errors(shared_data_dir: Path, option: str, needle: str) -> None:
    line = one_line_error(
        promptopt(
            "run", "greater", "--task", "bbh/navigate", "--data-dir", str(shared_data_dir),
            "-o", option, "--dry-run",
        )
    )  # fmt: skip
    assert needle in line


def test_method_defaults_never_reach_a_replacement_component() -> None:
    """The fake method's reasoner default (max_new_tokens=8) stays with its own reasoner."""
    own = dry_run("fake", "--task", "fake/yes-no", "--plugin", str(FAKES))
    assert own["options"]["reasoner"]["max_new_tokens"] == {"value": 8, "source": "method"}
    replaced = dry_run(
        "fake", "--task", "fake/yes-no", "--plugin", str(FAKES), "--reasoner", "greater"
    )
    assert replaced["components"]["reasoner"] == "greater"
    assert replaced["options"]["reasoner"]["max_new_tokens"] == {"value": 1024, "source": "default"}


def test_run_help_shows_the_optimizer_model_flags() -> None:
    proc = promptopt("run", "--help")
    assert proc.returncode == 0
    for flag in ("--optimizer-model", "--optimizer-backend", "--dry-run", "--trust-remote-code"):
        assert flag in proc.stdout


def test_an_optimizer_model_for_a_method_without_one_is_an_error(shared_data_dir: Path) -> None:
    line = one_line_error(
        promptopt(
            "run", "greater", "--task", "bbh/navigate", "--data-dir", str(shared_data_dir),
            "--optimizer-model", "x.gguf", "--dry-run",
        )
    )  # fmt: skip
    assert "writes no prompts with a second model" in line


def test_every_task_has_a_dry_run_with_the_paper_splits(shared_data_dir: Path) -> None:
    """``promptopt run greater --task T --dry-run`` for every task ``promptopt tasks`` lists."""
    from promptopt.config import RunConfig
    from promptopt.registry import get_registry
    from promptopt.runs import describe_run

    names = get_registry().names("task")
    assert len(names) == 29
    for name in names:
        plan = describe_run(RunConfig(method="greater", task=name, data_dir=str(shared_data_dir)))
        splits = plan["splits"]
        assert min(splits.values()) > 0, name
        if name.startswith("bbh/"):
            assert splits["train"] == 50, name
    folio = describe_run(RunConfig(method="greater", task="folio", data_dir=str(shared_data_dir)))
    gsm8k = describe_run(RunConfig(method="greater", task="gsm8k", data_dir=str(shared_data_dir)))
    assert (folio["splits"]["train"], folio["splits"]["dev"], folio["splits"]["test"]) == (
        100, 100, 203,
    )  # fmt: skip
    assert (gsm8k["splits"]["train"], gsm8k["splits"]["dev"], gsm8k["splits"]["test"]) == (
        100, 100, 1319,
    )  # fmt: skip
    assert folio["initial_prompt"].startswith("Use proper logical reasoning")
