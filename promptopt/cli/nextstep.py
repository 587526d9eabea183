"""What ``promptopt run`` tells a user to do next: where the run directory is, and the
``promptopt eval --run DIR`` command that measures its prompt on the test split with the run's
own model, data, task options and reasoning length."""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from promptopt.config import RunConfig, parse_option
from promptopt.errors import PromptoptError

#: Option scopes of a run that ``promptopt eval`` also builds (its ``-o`` reaches both).
EVAL_SCOPES = ("task", "backend")
#: Setting sources worth repeating: the user's ``-o`` and the method's presets (``run`` ones,
#: seed and data folder, are passed as flags or do not change an evaluation).
REPEATED_SOURCES = ("user", "method")


def next_step_line(
    run_dir: Path, config: RunConfig | None, plugin_files: Sequence[Path] = ()
) -> str:
    """One line for stderr: the run directory and the command that evaluates its prompt on
    the test split (``config`` None: an unreadable saved configuration, so the bare command)."""
    command = eval_command(run_dir, config, plugin_files)
    return f"promptopt: run directory {run_dir}; its prompt on the test split: {command}"


def eval_command(run_dir: Path, config: RunConfig | None, plugin_files: Sequence[Path] = ()) -> str:
    """``promptopt eval --run DIR ...`` as a shell command that evaluates the run's best prompt
    as the run saw it (``--task`` comes from the run itself); plugin files the run loaded are
    named in ``PROMPTOPT_PLUGIN_PATHS``."""
    flags = eval_flags(config) if config is not None else []
    words = ["promptopt", "eval", "--run", str(run_dir), *flags]
    command = shlex.join(words)
    if plugin_files:
        paths = os.pathsep.join(str(path) for path in plugin_files)
        command = f"PROMPTOPT_PLUGIN_PATHS={shlex.quote(paths)} {command}"
    return command


def eval_flags(config: RunConfig) -> list[str]:
    """The run's backend, model, data folder, reasoning length and task/backend options as
    ``promptopt eval`` flags; only ``--data-dir`` and ``--model`` when the run's plan cannot be
    resolved any more (a plugin gone)."""
    flags: list[str] = []
    try:
        plan = _plan(config)
    except PromptoptError:
        plan = None
    if plan is not None:
        flags += ["--backend", plan.classes["backend"].name]
    if config.model is not None:
        flags += ["--model", config.model]
    if config.data_dir is not None:
        flags += ["--data-dir", str(config.data_dir)]
    if plan is None:
        return flags
    tokens = plan.reasoning_tokens()
    if tokens is not None:
        flags += ["--max-new-tokens", str(tokens)]
    for key, value in repeated_options(plan).items():
        flags += ["-o", f"{key}={option_text(value)}"]
    return flags


def repeated_options(plan: Any) -> dict[str, Any]:
    """The task and backend options the run set (by ``-o`` or its method), which decide its
    test split and how its model runs."""
    options: dict[str, Any] = {}
    for scope in EVAL_SCOPES:
        for key, setting in plan.settings.get(scope, {}).items():
            if setting.source in REPEATED_SOURCES:
                options[key] = setting.value
    return options


def option_text(value: Any) -> str:
    """``value`` as ``-o key=TEXT`` reads it back: a string as is when it parses back to
    itself, anything else as JSON."""
    if isinstance(value, str) and parse_option(f"k={value}")[1] == value:
        return value
    try:
        return json.dumps(value)
    except TypeError:
        return str(value)


def _plan(config: RunConfig) -> Any:
    """The run's resolved plan (names, routed options); nothing is loaded."""
    from promptopt.assembly import plan_run
    from promptopt.registry import get_registry

    return plan_run(config, get_registry())
