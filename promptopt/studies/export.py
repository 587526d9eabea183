"""``promptopt study --export DEST``: the committable subset of a finished study (study.json,
invocations.jsonl, report.md/json, plots, every run's files gzip-compressed, the evaluation
store entries the report was derived from), and re-rendering the report from such an export
without loading any model."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path
from typing import Any

from promptopt.errors import PromptoptError
from promptopt.studies.plan import RUNS, STUDY_FILE, STUDY_WRITE_HINT, StudySettings

#: Run files an export leaves out: resumable state, not evidence.
SKIPPED_RUN_FILES = ("checkpoint.json", "checkpoint.json.tmp")
#: Files of the study directory an export copies as they are.
TOP_FILES = ("report.md", "report.json", "accuracy.png", "gain_vs_compute.png")


def read_json_maybe_gz(path: Path) -> dict[str, Any] | None:
    """``path`` (``x.json``) or its compressed copy ``x.json.gz`` as a JSON object; None when
    neither exists."""
    for candidate in (path, path.with_name(path.name + ".gz")):
        if candidate.is_file():
            opener = gzip.open if candidate.suffix == ".gz" else open
            with opener(candidate, "rt", encoding="utf-8") as handle:
                data = json.load(handle)
            if not isinstance(data, dict):
                raise PromptoptError(f"{str(candidate)!r} is not a JSON object", hint="restore it")
            return data
    return None


def export_study(
    root: Path, dest: Path, settings: StudySettings, used: list[dict[str, Any]]
) -> list[Path]:
    """Write the export of the study in ``root`` into the new or empty folder ``dest``;
    ``used`` are the store keys of every number in the report. Returns the files written."""
    from promptopt.evalcache import EvalCache
    from promptopt.studies.evaluate import STORE
    from promptopt.studies.record import INVOCATIONS, write_study_file

    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise PromptoptError(
            f"--export {str(dest)!r} is not a new or empty folder", hint="pass a new folder"
        )
    if dest.resolve() == root.resolve():
        raise PromptoptError("--export names the study folder itself", hint="pass a new folder")
    written: list[Path] = []
    try:
        dest.mkdir(parents=True, exist_ok=True)
        write_study_file(dest, settings, export={"from": str(root.name)})
        written.append(dest / STUDY_FILE)
        for name in (*TOP_FILES, INVOCATIONS):
            if (root / name).is_file():
                shutil.copyfile(root / name, dest / name)
                written.append(dest / name)
        for path in sorted((root / RUNS).rglob("*")):
            if not path.is_file() or path.name in SKIPPED_RUN_FILES or path.name.startswith("."):
                continue
            target = dest / path.relative_to(root)
            target = target.with_name(target.name + ".gz")
            target.parent.mkdir(parents=True, exist_ok=True)
            with (
                path.open("rb") as src,
                target.open("wb") as raw,
                gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as out,
            ):
                shutil.copyfileobj(src, out)
            written.append(target)
        source, copy = EvalCache(root / STORE), EvalCache(dest / STORE)
        for key in used:
            value = source.get(key)
            if value is None:
                continue
            copy.put(key, value)
            written.append(copy.path_for(key))
    except OSError as exc:
        raise PromptoptError(
            f"cannot write the export {str(dest)!r} ({exc.strerror or exc})",
            hint=STUDY_WRITE_HINT,
        ) from exc
    return written
