"""A study's record: ``study.json`` (the settings, the code version that wrote it, paths relative
to the study directory and a content hash, so a hand edit is detected) and
``invocations.jsonl`` (every invocation's argv, time, code version and what it changed)."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from promptopt.errors import PromptoptError
from promptopt.studies.plan import (
    STUDY_FILE,
    STUDY_KIND,
    STUDY_VERSION,
    STUDY_WRITE_HINT,
    StudySettings,
)

INVOCATIONS = "invocations.jsonl"
#: What ``relative_paths`` entries of study.json are relative to.
RELATIVE_TO = "study directory"


def code_version() -> dict[str, Any]:
    """The code that runs: the git commit and whether the checkout has uncommitted changes when
    promptopt runs from a checkout, else the version of every installed promptopt
    distribution."""
    import subprocess

    source = Path(__file__).resolve().parents[2]
    if (source / ".git").exists():
        try:
            commit = subprocess.run(
                ["git", "-C", str(source), "rev-parse", "HEAD"],
                capture_output=True,
                text=True,
                timeout=30,
                check=True,
            ).stdout.strip()
            status = subprocess.run(
                ["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no"],
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            ).stdout
            return {"git": {"commit": commit, "dirty": bool(status.strip())}}
        except (OSError, subprocess.SubprocessError):
            pass
    return {"distributions": distribution_versions()}


def distribution_versions() -> dict[str, str]:
    """``{name: version}`` of every installed distribution whose name starts with promptopt."""
    from importlib.metadata import distributions

    found: dict[str, str] = {}
    for dist in distributions():
        name = str(dist.metadata["Name"] or "")
        if name.lower().replace("_", "-").startswith("promptopt"):
            found[name] = dist.version
    return dict(sorted(found.items()))


def content_hash(data: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of ``data`` without its ``hash`` field."""
    from promptopt.evalcache import canonical_json

    body = {key: value for key, value in data.items() if key != "hash"}
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def _relative(path: str, root: Path) -> str:
    return os.path.relpath(Path(path), root.resolve()).replace(os.sep, "/")


def portable_settings(settings: StudySettings, root: Path) -> tuple[dict[str, Any], list[str]]:
    """The settings with ``data_dir`` and data-file tasks relative to ``root``, and the names
    of the fields made relative (``data_dir``, ``tasks/2``)."""
    values = settings.model_dump()
    relative: list[str] = []
    if values["data_dir"] and Path(values["data_dir"]).is_absolute():
        values["data_dir"] = _relative(values["data_dir"], root)
        relative.append("data_dir")
    for i, task in enumerate(values["tasks"]):
        if Path(task).is_absolute():
            values["tasks"][i] = _relative(task, root)
            relative.append(f"tasks/{i}")
    return values, relative


def resolved_settings(values: dict[str, Any], relative: list[str], root: Path) -> dict[str, Any]:
    """Undo :func:`portable_settings`: relative fields become absolute paths under ``root``."""
    values = json.loads(json.dumps(values))
    for name in relative:
        field, _, index = name.partition("/")
        if field == "data_dir" and isinstance(values.get("data_dir"), str):
            values["data_dir"] = str((root / values["data_dir"]).resolve())
        elif field == "tasks" and index.isdigit() and int(index) < len(values.get("tasks", [])):
            values["tasks"][int(index)] = str((root / values["tasks"][int(index)]).resolve())
    return values


def write_study_file(root: Path, settings: StudySettings, **extra: Any) -> None:
    """Write ``ROOT/study.json`` (atomically) with the code version and content hash;
    ``extra`` fields (``export``) are kept in the file and the hash."""
    from promptopt.outputs import guarded_write
    from promptopt.rundir import atomic_write_json

    values, relative = portable_settings(settings, root)
    data: dict[str, Any] = {
        "kind": STUDY_KIND,
        "version": STUDY_VERSION,
        "settings": values,
        "relative_paths": relative,
        "relative_to": RELATIVE_TO,
        "code_version": code_version(),
        **extra,
    }
    data["hash"] = content_hash(data)
    marker = root / STUDY_FILE
    guarded_write(marker, lambda: atomic_write_json(marker, data), hint=STUDY_WRITE_HINT)


def read_study_data(root: Path) -> dict[str, Any]:
    """``ROOT/study.json`` checked: a study file of this version whose hash matches (a file
    edited by hand is refused: the grid changes through ``--extend``)."""
    from promptopt.rundir import read_json_object

    path = root / STUDY_FILE
    hint = "restore the study.json promptopt wrote, or pass a new --out"
    data = read_json_object(path, hint=hint)
    if data.get("kind") != STUDY_KIND or not isinstance(data.get("settings"), dict):
        raise PromptoptError(f"{str(path)!r} is not a promptopt study file", hint=hint)
    if data.get("version") != STUDY_VERSION:
        raise PromptoptError(
            f"{str(path)!r} is a study of format version {data.get('version')!r}; "
            f"this promptopt reads version {STUDY_VERSION}",
            hint="use the promptopt version that started it (see its code_version), or pass "
            "a new --out",
        )
    if data.get("hash") != content_hash(data):
        raise PromptoptError(
            f"{str(path)!r} was edited by hand (its content hash does not match)",
            hint="restore the file promptopt wrote; change the grid with --extend, other "
            "settings with a new --out",
        )
    return data


def read_study_file(root: Path) -> StudySettings:
    """The settings of ``ROOT/study.json`` (see :func:`read_study_data`), paths resolved."""
    from pydantic import ValidationError

    data = read_study_data(root)
    relative = data.get("relative_paths")
    names = [str(n) for n in relative] if isinstance(relative, list) else []
    try:
        return StudySettings(**resolved_settings(data["settings"], names, root))
    except ValidationError as exc:
        raise PromptoptError(
            f"{str(root / STUDY_FILE)!r} has invalid settings ({exc.errors()[0]['msg']})",
            hint="restore the study.json promptopt wrote, or pass a new --out",
        ) from exc


def is_export(root: Path) -> bool:
    """Whether ``root`` holds an export (``promptopt study --export``): it re-renders only."""
    try:
        return bool(read_study_data(root).get("export"))
    except PromptoptError:
        return False


def record_invocation(root: Path, action: str, **details: Any) -> None:
    """Append one line to ``ROOT/invocations.jsonl``: time, argv, code version, ``action``
    (run, extend, export, render) and ``details``."""
    from promptopt.outputs import guarded_write
    from promptopt.urls import redact_text

    line = {
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "argv": [redact_text(arg) for arg in _argv()],
        "code_version": code_version(),
        "action": action,
        **details,
    }
    path = root / INVOCATIONS

    def append() -> None:
        with path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(line, ensure_ascii=False) + "\n")

    guarded_write(path, append, hint=STUDY_WRITE_HINT)


def _argv() -> list[str]:
    """``sys.argv`` with the command itself as ``promptopt`` (not the path of its module)."""
    head, *rest = sys.argv or [""]
    name = Path(head).name
    return ["promptopt", *rest] if name in ("__main__.py", "promptopt") else [head, *rest]


def read_invocations(root: Path) -> list[dict[str, Any]]:
    """Every line of ``ROOT/invocations.jsonl`` (none when absent)."""
    path = root / INVOCATIONS
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def extend_settings(
    stored: StudySettings, methods: list[str], tasks: list[str], seeds: list[int]
) -> tuple[StudySettings, dict[str, list[Any]]]:
    """``stored`` with ``methods``, ``tasks`` and ``seeds`` added (those already there are
    ignored); also what was added."""
    new_methods = [m for m in methods if m not in stored.methods]
    new_tasks = [t for t in tasks if t not in stored.tasks]
    new_seeds = [s for s in seeds if s not in stored.seeds]
    grown = stored.model_copy(
        update={
            "methods": [*stored.methods, *new_methods],
            "tasks": [*stored.tasks, *new_tasks],
            "seeds": [*stored.seeds, *new_seeds],
        }
    )
    added: dict[str, list[Any]] = {"methods": new_methods, "tasks": new_tasks, "seeds": new_seeds}
    return StudySettings(**grown.model_dump()), added
