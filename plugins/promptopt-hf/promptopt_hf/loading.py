"""Load a resolved model and tokenizer with transformers: device, dtype, safetensors only.

Every failure a user can cause (missing cache offline, unreadable folder, bad device) becomes a
one-line :class:`~promptopt.errors.ModelLoadError` naming the input and the fix.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from promptopt.errors import ModelLoadError
from promptopt_hf.resolve import ModelSource

if TYPE_CHECKING:
    import torch


def transformers_version() -> tuple[int, int]:
    """(major, minor) of the installed transformers."""
    import transformers

    major, minor = transformers.__version__.split(".")[:2]
    return int(major), int("".join(ch for ch in minor if ch.isdigit()) or 0)


def dtype_kwarg() -> str:
    """``from_pretrained``'s dtype keyword: ``dtype`` since transformers 4.56, ``torch_dtype``
    before."""
    return "dtype" if transformers_version() >= (4, 56) else "torch_dtype"


def resolve_device(spec: str) -> torch.device:
    """``auto`` -> CUDA when present, else CPU; explicit devices are checked to exist."""
    import torch

    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(spec)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ModelLoadError(
                f"device {spec!r} requested but CUDA is not available",
                hint="use -o device=cpu (or auto)",
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ModelLoadError(
                f"device {spec!r} does not exist ({torch.cuda.device_count()} CUDA devices)",
                hint="use -o device=cuda:0 or auto",
            )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ModelLoadError(
            f"device {spec!r} requested but MPS is not available", hint="use -o device=cpu"
        )
    return device


def resolve_dtype(spec: str, device: torch.device) -> torch.dtype:
    """``auto`` -> bfloat16 on CUDA devices that support it, float32 otherwise."""
    import torch

    if spec == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[spec]


def load_model(
    source: ModelSource, *, dtype: torch.dtype, device: torch.device, trust_remote_code: bool
) -> tuple[Any, Any]:
    """(model, tokenizer) for ``source``: eval mode, no gradients on parameters, on ``device``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    where = str(source.folder) if source.folder is not None else str(source.hub_id)
    kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code}
    if source.hub_id is not None and _offline():
        kwargs["local_files_only"] = True
    placement: dict[str, Any] = {}
    if device.type == "cuda" and importlib.util.find_spec("accelerate") is not None:
        placement["device_map"] = str(device)  # load straight onto the GPU
    try:
        with quiet_progress_bars():
            tokenizer = AutoTokenizer.from_pretrained(where, **kwargs)
            model: Any = AutoModelForCausalLM.from_pretrained(
                where, use_safetensors=True, **{dtype_kwarg(): dtype}, **placement, **kwargs
            )
    except ModelLoadError:
        raise
    except Exception as exc:  # OSError, ValueError, SafetensorError, ... from many layers
        raise _load_error(source, exc) from exc
    model.to(device)
    model.eval()
    model.requires_grad_(False)
    return model, tokenizer


@contextmanager
def quiet_progress_bars() -> Iterator[None]:
    """Hide transformers' per-load progress bars (restored afterwards)."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on")


#: The fix for a model that ships its own Python code, and what it costs.
REMOTE_CODE_HINT = (
    "the model ships its own Python code: pass -o trust_remote_code=true to run it, only for a "
    "model whose author you trust (that code runs on this machine with your permissions)"
)


def needs_remote_code(source: ModelSource, exc: BaseException) -> bool:
    """True when loading failed because the model's own code would have to run: transformers
    says so, or the folder's config.json maps classes to files inside it (``auto_map``)."""
    text = str(exc).lower()
    if "trust_remote_code" in text or "custom code" in text:
        return True
    if source.folder is None:
        return False
    try:
        import json

        config = json.loads((source.folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and bool(config.get("auto_map"))


def _load_error(source: ModelSource, exc: Exception) -> ModelLoadError:
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if needs_remote_code(source, exc):
        where = source.hub_id if source.hub_id is not None else str(source.folder)
        return ModelLoadError(
            f"model {where!r} cannot be loaded without running its own code", hint=REMOTE_CODE_HINT
        )
    if source.hub_id is not None:
        if _offline() or isinstance(exc, OSError):
            return ModelLoadError(
                f"model {source.hub_id!r} is neither a local path nor cached from the Hugging "
                "Face hub, and could not be downloaded",
                hint="connect to the network and unset HF_HUB_OFFLINE, or pass a local folder "
                "or .gguf file",
            )
        return ModelLoadError(
            f"cannot load model {source.hub_id!r}: {detail}",
            hint="check the hub id (org/name)",
        )
    hint = "check the folder is complete (config.json, tokenizer files, *.safetensors)"
    if source.gguf is not None:
        hint = f"delete the cached conversion {source.folder} to rebuild it from {source.gguf}"
    return ModelLoadError(f"cannot load model from {source.folder}: {detail}", hint=hint)
