"""Dequantize a GGUF model once with transformers and cache it as a safetensors folder.

Loading a GGUF through transformers takes 15-20 s (tokenizer conversion + dequantization); the
cached folder reloads in well under a second. A cached folder is used only for the file whose
content hash it records (:func:`promptopt.filehash.file_sha256`), so a replaced file is converted
again. The cache is written to a temporary folder and renamed into place, so an interrupted
conversion never leaves a half-written model behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from promptopt.errors import ModelLoadError

SOURCE_FILE = "promptopt-source.json"


def file_signature(path: Path, head_bytes: int = 1 << 20) -> str:
    """A cheap content signature: size, mtime and the first and last ``head_bytes`` bytes."""
    stat = path.stat()
    digest = hashlib.sha256(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    with path.open("rb") as handle:
        digest.update(handle.read(head_bytes))
        if stat.st_size > head_bytes:
            handle.seek(max(head_bytes, stat.st_size - head_bytes))
            digest.update(handle.read(head_bytes))
    return digest.hexdigest()


def _source_record(gguf: Path) -> dict[str, object]:
    """What a conversion was made from: the file's name, size and content hash (the hash is
    memoized by path, size and mtime, so a reload does not read the file again)."""
    from promptopt.filehash import file_sha256

    return {"gguf": gguf.name, "size": gguf.stat().st_size, "sha256": file_sha256(gguf)}


def _is_complete(folder: Path, record: dict[str, object]) -> bool:
    """True when ``folder`` is a finished conversion of exactly the file ``record`` describes
    (same content hash: a replaced file of the same name and size is not)."""
    marker = folder / SOURCE_FILE
    if not marker.is_file() or not any(folder.glob("*.safetensors")):
        return False
    try:
        stored = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(stored, dict) and all(stored.get(k) == v for k, v in record.items())


def converted_folder(gguf: Path, name: str | None = None) -> Path:
    """The cached safetensors folder for ``gguf``, converting it first if needed.

    ``name`` defaults to the file stem plus a short hash of its path, so two different files
    with the same name do not share a cache entry."""
    from promptopt_hf.resolve import cache_root

    if name is None:
        tag = hashlib.sha256(str(gguf).encode()).hexdigest()[:10]
        name = f"{gguf.stem}-{tag}"
    target = cache_root() / name
    record = _source_record(gguf)
    if _is_complete(target, record):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=target.parent))
    print(
        f"promptopt-hf: converting {gguf.name} to safetensors once (about 20 s on a laptop CPU) "
        f"-> {target}",
        file=sys.stderr,
    )
    try:
        _convert(gguf, tmp)
        tmp.chmod(0o755)
        (tmp / SOURCE_FILE).write_text(json.dumps(record, indent=1))
        _swap_into_place(tmp, target, record)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _remove_stale_temps(target: Path, max_age_s: float = 3600.0) -> None:
    """Delete temporary folders left by conversions of ``target`` that crashed long ago."""
    now = time.time()
    for leftover in target.parent.glob(f".{target.name}.tmp-*"):
        try:
            if now - leftover.stat().st_mtime > max_age_s:
                shutil.rmtree(leftover, ignore_errors=True)
        except OSError:
            continue


def _swap_into_place(tmp: Path, target: Path, record: dict[str, object]) -> None:
    """Rename ``tmp`` to ``target``; a stale ``target`` is moved aside first, and a complete one
    written meanwhile by another process wins."""
    if target.exists():
        if _is_complete(target, record):
            return
        stale = target.with_name(f".{target.name}.stale-{os.getpid()}")
        target.rename(stale)
        shutil.rmtree(stale, ignore_errors=True)
    try:
        tmp.rename(target)
    except OSError:
        if not _is_complete(target, record):
            raise


def _convert(gguf: Path, out: Path) -> None:
    """Load ``gguf`` with transformers (dequantized to float32) and save model + tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from promptopt_hf.loading import dtype_kwarg

    for package in ("gguf", "accelerate"):  # transformers needs both to read GGUF
        if importlib_missing(package):
            raise ModelLoadError(
                f"cannot read {gguf}: the {package!r} package is not installed",
                hint=f"pip install {package}",
            )
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        loaded: Any = AutoModelForCausalLM.from_pretrained(
            gguf.parent,
            gguf_file=gguf.name,
            output_loading_info=True,
            **{dtype_kwarg(): torch.float32},
        )
    except Exception as exc:  # transformers raises many types for unreadable files
        raise ModelLoadError(
            f"cannot convert GGUF model {gguf}: {type(exc).__name__}: {_first_line(exc)}",
            hint="check that the file is a complete GGUF of an architecture transformers supports",
        ) from exc
    model, info = loaded
    _check_complete(model, info, gguf)
    # The dequantized weights are plain tensors; drop the GGUF quantizer so save works.
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


def _check_complete(model: Any, info: dict[str, Any], gguf: Path) -> None:
    """Refuse a conversion with randomly initialized weights. GGUFs with tied embeddings carry
    no output matrix; transformers < 4.47 then leaves ``lm_head`` random, so tie it here."""
    missing = set(info.get("missing_keys") or ())
    output = model.get_output_embeddings()
    if missing == {"lm_head.weight"} and output is not None:
        model.config.tie_word_embeddings = True
        output.weight = model.get_input_embeddings().weight
        missing.clear()
    if missing:
        raise ModelLoadError(
            f"cannot convert GGUF model {gguf}: transformers left weights uninitialized "
            f"({', '.join(sorted(missing)[:3])})",
            hint="upgrade transformers (pip install -U transformers) or use the llamacpp backend",
        )


def importlib_missing(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""
