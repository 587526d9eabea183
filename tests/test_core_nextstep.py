"""The eval command ``promptopt run`` prints last: built from a run's resolved plan (real
registry and plugins, no model loaded)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from promptopt.cli.nextstep import eval_command, option_text
from promptopt.config import make_run_config, parse_option


def test_eval_command_repeats_what_decides_the_runs_test_split(shared_data_dir: Path) -> None:
    """The README's run: its backend, data folder, reasoning length and task options (which
    place the test split) are repeated; method options (steps) are not eval's."""
    config = make_run_config(
        {},
        {
            "method": "greater",
            "task": "bbh/navigate",
            "data_dir": str(shared_data_dir),
            "options": {"steps": 2, "train_size": 4, "dev_size": 4, "max_new_tokens": 48},
        },
    )
    words = shlex.split(eval_command(Path("runs/greater x"), config))
    assert words[:4] == ["promptopt", "eval", "--run", "runs/greater x"]
    flags = words[4:]
    pairs = dict(zip(flags[::2], flags[1::2], strict=True))
    assert pairs["--backend"] == "hf" and pairs["--data-dir"] == str(shared_data_dir)
    assert pairs["--max-new-tokens"] == "48"
    options = [flags[i + 1] for i, word in enumerate(flags) if word == "-o"]
    assert sorted(options) == ["dev_size=4", "train_size=4"]
    assert "--model" not in pairs  # left out: eval's default is the run's (smollm2)


def test_plugin_files_the_run_loaded_are_named_for_eval() -> None:
    config = make_run_config({}, {"method": "greater", "task": "folio"})
    command = eval_command(Path("r"), config, [Path("my plugin.py")])
    assert command.startswith("PROMPTOPT_PLUGIN_PATHS='my plugin.py' promptopt eval --run r ")


def test_without_a_readable_configuration_the_bare_command() -> None:
    assert eval_command(Path("runs/r"), None) == "promptopt eval --run runs/r"


@pytest.mark.parametrize("value", ["max", "12", "true", "null", " pad ", 4, 0.5, True, None, [1]])
def test_option_values_read_back_as_themselves(value: object) -> None:
    assert parse_option(f"key={option_text(value)}")[1] == value
