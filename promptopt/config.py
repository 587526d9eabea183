"""Run configuration: CLI flags, ``-o key=value`` options and TOML files, merged and validated."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from promptopt.errors import PromptoptError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

#: Settings of a run given by their own flags (``--seed``, ``--data-dir``), never by ``-o``: they
#: reach every component declaring an option of the same name. Every command reads this list.
RUN_LEVEL_KEYS = ("seed", "data_dir")
#: Settings of a run given by ``-o`` that every method has (declared on
#: :class:`~promptopt.components.MethodOptions`, so routed to the method) but that the loop acts
#: on, the same for every method: ``accept``, the acceptance rule of the final prompt
#: (:mod:`promptopt.acceptance`). Documented once, in docs/components.md.
RUN_LEVEL_OPTIONS = ("accept",)

#: The largest seed: every random generator a run seeds (torch, numpy, llama.cpp) takes 32 bits.
MAX_SEED = 2**32 - 1

#: Option keys that let a model folder run its own code: only the command line may turn them on.
REMOTE_CODE_KEY = "trust_remote_code"


class RunConfig(BaseModel):
    """Everything that determines a run; saved as ``config.json`` and re-read by ``--resume``."""

    model_config = ConfigDict(extra="forbid")

    method: str
    task: str
    backend: str | None = None
    model: str | None = None
    optimizer_backend: str | None = None
    optimizer_model: str | None = None
    seed: int = Field(default=0, ge=0, le=MAX_SEED)
    data_dir: str | None = None
    options: dict[str, Any] = {}
    components: dict[str, str] = {}
    #: What the run resolved when it (last) started, e.g. where generation runs; informational.
    runtime: dict[str, Any] = {}
    #: The task's data identity when the run started (``Task.identity``: a data file's
    #: SHA-256); a resume refuses other data.
    task_identity: dict[str, Any] = {}


def parse_option(text: str) -> tuple[str, Any]:
    """``"steps=2"`` -> ``("steps", 2)``; values are read as JSON when they parse, else strings."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise PromptoptError(
            f"option {text!r} is not of the form key=value", hint="write e.g. -o steps=2"
        )
    raw = raw.strip()
    lowered = raw.lower()
    if lowered in ("true", "false"):
        return key, lowered == "true"
    if lowered in ("none", "null"):
        return key, None
    try:
        return key, json.loads(raw)
    except json.JSONDecodeError:
        return key, raw


def parse_options(items: list[str] | None) -> dict[str, Any]:
    return dict(parse_option(item) for item in items or [])


def load_toml(path: Path) -> dict[str, Any]:
    """Read a run TOML file: top-level run keys plus ``[options]`` and ``[components]`` tables."""
    if path.is_dir():
        raise PromptoptError(
            f"config file {str(path)!r} is a directory", hint="pass a .toml file as --config"
        )
    if not path.is_file():
        raise PromptoptError(f"config file {str(path)!r} does not exist", hint="check --config")
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise PromptoptError(
            f"config file {str(path)!r} is not UTF-8 text", hint="save it as a UTF-8 TOML file"
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise PromptoptError(
            f"config file {str(path)!r} is not valid TOML: {exc}",
            hint="see docs/architecture.md for the run.toml layout",
        ) from exc
    for table in ("options", "components"):
        if table in values and not isinstance(values[table], dict):
            raise PromptoptError(
                f"config file {str(path)!r}: {table!r} must be a table",
                hint=f"write it as [{table}] followed by key = value lines",
            )
    return values


def refuse_run_level_options(
    options: dict[str, Any], also: str | None = None, flags: dict[str, str] | None = None
) -> None:
    """A one-line error when ``-o`` sets a run-level setting (``seed``, ``data_dir``, scoped or
    not): those have their own flags (``flags`` renames them, e.g. a study's ``--seeds``)."""
    for raw in options:
        key = raw.rpartition(":")[2].rpartition(".")[2]
        if key in RUN_LEVEL_KEYS:
            flag = (flags or {}).get(key, "--" + key.replace("_", "-"))
            hint = f"pass {flag}" + (f" (or {also.replace('KEY', key)})" if also else "")
            raise PromptoptError(f"{key!r} is a run setting, not an option", hint=hint)


def check_remote_code(options: dict[str, Any], where: str) -> None:
    """Refuse ``trust_remote_code`` coming from a file (a config file or a resumed run's
    config.json): running a model folder's code must be asked for on the command line."""
    for key, value in options.items():
        if key.rpartition(".")[2] == REMOTE_CODE_KEY and value:
            raise PromptoptError(
                f"{where} turns on {key}, which runs code from the model folder",
                hint="add --trust-remote-code to the command if you trust that code",
            )


def make_run_config(file_values: dict[str, Any], cli_values: dict[str, Any]) -> RunConfig:
    """Merge a TOML file's values with CLI values (CLI wins; option dicts are merged)."""
    merged: dict[str, Any] = dict(file_values)
    for key, value in cli_values.items():
        if key in ("options", "components"):
            merged[key] = {**merged.get(key, {}), **value}
        elif value is not None:
            merged[key] = value
    from promptopt.urls import refuse_credentials

    for key in ("model", "optimizer_model"):  # they are written to config.json and logs
        refuse_credentials(merged.get(key), "--" + key.replace("_", "-"))
    in_file = "a top-level `KEY = ...` in the config file"
    refuse_run_level_options(merged.get("options", {}), in_file)
    try:
        return RunConfig(**merged)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise PromptoptError(
            f"run configuration key {where!r}: {first['msg']}",
            hint="see `promptopt run --help` for the accepted keys",
        ) from exc
