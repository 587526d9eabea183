"""Quantized variants of a GGUF made in-process with llama.cpp's quantizer, cached on disk.

A variant's file name is ``<source sha256[:16]>-<quant>.gguf`` so it is made once per source
and quantization. Sources that are already quantized (e.g. the embedded SmolLM2 Q4_1) are
re-quantized with ``allow_requantize``: llama.cpp dequantizes every tensor to F32 and
quantizes that again, so a variant carries the source's quantization error plus its own
(recorded as ``requantized`` in the transfer matrix).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from promptopt.errors import ModelLoadError, PromptoptError
from promptopt_llamacpp.modelfiles import captured_stderr, file_sha256, gguf_cache_dir

#: Quantization names (lower case, as users type them) -> llama.cpp ``llama_ftype`` values.
QUANT_FTYPES: dict[str, int] = {
    "f32": 0,
    "f16": 1,
    "q4_0": 2,
    "q4_1": 3,
    "q8_0": 7,
    "q5_0": 8,
    "q5_1": 9,
    "q2_k": 10,
    "q3_k_s": 11,
    "q3_k_m": 12,
    "q3_k_l": 13,
    "q4_k_s": 14,
    "q4_k_m": 15,
    "q5_k_s": 16,
    "q5_k_m": 17,
    "q6_k": 18,
    "bf16": 32,
}
#: ``general.file_type`` values of unquantized files (F32, F16, BF16).
FLOAT_FTYPES = (0, 1, 32)
#: The pseudo-quantization meaning "the file as it is".
ORIGINAL = "orig"


@dataclass(frozen=True)
class Variant:
    """One model file to evaluate: the source it came from and its quantization."""

    model: str
    quant: str
    path: Path
    source: Path
    requantized: bool = False


def parse_quants(text: str | None) -> list[str]:
    """``"f16,q8_0"`` -> ``["f16", "q8_0"]``; unknown names fail listing the known ones."""
    if text is None:
        return [ORIGINAL]
    quants = [part.strip().lower() for part in text.split(",") if part.strip()]
    if not quants:
        raise PromptoptError(
            f"--quants {text!r} names no quantization",
            hint=f"e.g. --quants {ORIGINAL},q8_0 ({ORIGINAL} = the file as it is)",
        )
    for quant in quants:
        if quant != ORIGINAL and quant not in QUANT_FTYPES:
            raise PromptoptError(
                f"unknown quantization {quant!r} in --quants",
                hint=f"choose from {ORIGINAL}, {', '.join(QUANT_FTYPES)}",
            )
    return quants


def file_type(path: Path) -> int:
    """The GGUF's ``general.file_type`` (read from the header; -1 when absent)."""
    from promptopt.ggufheader import header_value

    value = header_value(path, "general.file_type")
    return int(value) if value is not None else -1


def quantize(source: Path, quant: str, *, threads: int = 0) -> Variant:
    """``source`` quantized to ``quant`` (``orig`` returns it unchanged), cached by content."""
    if quant == ORIGINAL:
        return Variant(source.name, quant, source, source)
    source_type = file_type(source)
    requantize = source_type not in FLOAT_FTYPES
    target = gguf_cache_dir() / f"{file_sha256(source)[:16]}-{quant}.gguf"
    if not target.is_file():
        _run_quantizer(source, target, QUANT_FTYPES[quant], requantize, threads)
    return Variant(source.name, quant, target, source, requantize)


def _run_quantizer(source: Path, target: Path, ftype: int, requantize: bool, threads: int) -> None:
    import logging

    import llama_cpp

    logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)  # llama.cpp's log callback
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.nthread = threads
    params.allow_requantize = requantize
    with captured_stderr() as log:
        status = llama_cpp.llama_model_quantize(
            str(source).encode(), str(tmp).encode(), llama_cpp.byref(params)
        )
    if status != 0 or not tmp.is_file():
        tmp.unlink(missing_ok=True)
        last = next((line for line in reversed(log.text().splitlines()) if line.strip()), "")
        raise ModelLoadError(
            f"llama.cpp could not quantize {str(source)!r} (status {status}): {last.strip()}",
            hint="check the source is a complete F16/F32 (or quantized) GGUF",
        )
    os.replace(tmp, target)
