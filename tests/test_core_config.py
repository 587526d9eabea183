"""Options: parsing ``-o key=value``, routing to components, validation errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from promptopt.assembly import build_options
from promptopt.config import make_run_config, parse_option, parse_options
from promptopt.errors import PromptoptError
from promptopt.options import build_command_options
from promptopt.reasoners import ChatReasoner


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("steps=2", ("steps", 2)),
        ("temperature=0.2", ("temperature", 0.2)),
        ("flag=true", ("flag", True)),
        ("flag=False", ("flag", False)),
        ("model=none", ("model", None)),
        ("initial_prompt=Use your brain.", ("initial_prompt", "Use your brain.")),
        ("sizes=[1, 2]", ("sizes", [1, 2])),
        ("text=a=b", ("text", "a=b")),
    ],
)
def test_parse_option(text: str, expected: tuple[str, object]) -> None:
    assert parse_option(text) == expected


def test_parse_option_without_equals_names_the_input() -> None:
    with pytest.raises(PromptoptError, match="'steps2'"):
        parse_option("steps2")


def test_options_route_only_declared_fields() -> None:
    options = build_options(ChatReasoner, {"max_new_tokens": 7, "topk": 3, "seed": 1})
    assert options.max_new_tokens == 7  # type: ignore[attr-defined]


def test_bad_option_value_names_key_and_component() -> None:
    with pytest.raises(PromptoptError, match=r"max_new_tokens='many'.*reasoner 'chat'"):
        build_options(ChatReasoner, {"max_new_tokens": "many"})


def test_unknown_option_lists_valid_keys() -> None:
    with pytest.raises(PromptoptError, match="unknown option 'stepz'") as info:
        build_command_options({"reasoner": ChatReasoner}, {"stepz": 2})
    assert "max_new_tokens" in str(info.value)


def test_command_options_route_as_a_runs_do() -> None:
    """``eval`` and ``transfer`` route -o like ``run``: scoped keys reach their component,
    a bare key declared by several components is an error asking for a scope."""
    from promptopt.testing.fakes import FakeBackend, ListTask

    class Both(ListTask):
        class Options(ListTask.Options):
            fake_salt: str = ""

    built = build_command_options(
        {"task": Both, "backend": FakeBackend}, {"backend.fake_salt": "x", "task.fake_salt": "y"}
    )
    assert (built["backend"].fake_salt, built["task"].fake_salt) == ("x", "y")
    with pytest.raises(PromptoptError, match="declared by several components") as info:
        build_command_options({"task": Both, "backend": FakeBackend}, {"fake_salt": "x"})
    assert "-o task.fake_salt=" in str(info.value)
    with pytest.raises(PromptoptError, match="is for method 'gpo', not this command"):
        build_command_options({"task": Both, "backend": FakeBackend}, {"gpo:steps": 1})


def test_cli_values_override_toml(tmp_path: Path) -> None:
    config = make_run_config(
        {"method": "greater", "task": "folio", "seed": 3, "options": {"steps": 5, "topk": 8}},
        {"task": "gsm8k", "seed": None, "options": parse_options(["steps=2"])},
    )
    assert config.task == "gsm8k" and config.seed == 3
    assert config.options == {"steps": 2, "topk": 8}


def test_unknown_toml_key_is_an_error() -> None:
    with pytest.raises(PromptoptError, match="'modle'"):
        make_run_config({"method": "m", "task": "t", "modle": "x"}, {})
