"""``--transfer``: the study's prompts evaluated again on quantizations of the model (``q8_0``,
``q4_k_m``, ...) and on other GGUF files, with the llamacpp plugin's quantizer and backend."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from promptopt.errors import PromptoptError
from promptopt.study.evaluate import Target, backend_options, model_identity
from promptopt.study.plan import StudySettings

BACKEND = "llamacpp"


def _plugin() -> ModuleType:
    """``promptopt_llamacpp.quantize``, or a one-line error when the plugin is not installed."""
    try:
        from promptopt_llamacpp import quantize
    except ImportError:
        raise PromptoptError(
            "--transfer needs the promptopt-llamacpp plugin, which is not installed",
            hint="install plugins/promptopt-llamacpp (with llama-cpp-python) or drop --transfer",
        ) from None
    return quantize


def is_quant(item: str) -> bool:
    """Whether ``item`` names a quantization llama.cpp can make (``orig``: the file as is)."""
    quantize = _plugin()
    name = item.lower()
    return name == quantize.ORIGINAL or name in quantize.QUANT_FTYPES


def check_transfer(items: list[str]) -> None:
    """Every item is a quantization name or an existing model file/folder (one-line errors)."""
    if not items:
        return
    quantize = _plugin()
    for item in items:
        if is_quant(item):
            continue
        if not Path(item).expanduser().exists():
            raise PromptoptError(
                f"--transfer item {item!r} is neither a quantization nor an existing model file",
                hint=f"use {quantize.ORIGINAL}, {', '.join(quantize.QUANT_FTYPES)} or a .gguf path",
            )


def transfer_targets(settings: StudySettings) -> list[Target]:
    """One llama.cpp :class:`Target` per ``--transfer`` item; files are made (quantized or
    exported) only when a target's model must load."""
    check_transfer(settings.transfer)
    options = backend_options(BACKEND, settings.options)
    targets: list[Target] = []
    for item in settings.transfer:
        if is_quant(item):
            quant, ref = item.lower(), settings.model
            label = quant
        else:
            quant, ref = "orig", str(Path(item).expanduser().resolve())
            label = Path(item).name
        identity = {"backend": BACKEND, "model": model_identity(ref), "quant": quant}
        targets.append(Target(label, BACKEND, identity, options, _locator(ref, quant)))
    return targets


def _locator(ref: str | None, quant: str) -> Callable[[], str | None]:
    def locate() -> str:
        from promptopt_llamacpp.transfer import build_variants

        return str(build_variants([ref or "smollm2"], [quant])[0].path)

    return locate
