"""``--transfer``: the study's prompts evaluated again on quantizations of the model (``q8_0``,
``q4_k_m``, ...) and on other GGUF files, with the llamacpp plugin's quantizer and backend."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from promptopt.errors import PromptoptError
from promptopt.filehash import reference_identity as model_identity
from promptopt.study.plan import StudySettings
from promptopt.study.targets import Target, backend_options

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


def check_transfer(items: list[str], model: str | None = None) -> None:
    """Every item is a quantization of ``model`` (which must then be a local model llama.cpp
    can quantize) or an existing GGUF file or HF model folder; one-line errors otherwise."""
    if not items:
        return
    quantize = _plugin()
    for item in items:
        if is_quant(item):
            _check_quantizable(item, model)
            continue
        _check_model_file(item, f"--transfer item {item!r}", quantize)


def _check_model_file(ref: str, what: str, quantize: ModuleType) -> None:
    """``ref`` is a GGUF file (by its magic) or a folder with an HF ``config.json``."""
    from promptopt_llamacpp.modelfiles import check_gguf

    path = Path(ref).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise PromptoptError(
                f"{what} is a folder without config.json, not a model",
                hint="pass a .gguf file or an HF model folder",
            )
        return
    if not path.is_file():
        raise PromptoptError(
            f"{what} is neither a quantization nor an existing model file",
            hint=f"use {quantize.ORIGINAL}, {', '.join(quantize.QUANT_FTYPES)} or a .gguf path",
        )
    try:
        check_gguf(path)
    except PromptoptError as exc:
        raise PromptoptError(f"{what}: {exc.message}", hint="pass a .gguf file") from None


def _check_quantizable(item: str, model: str | None) -> None:
    """A quantization needs a local model: the default or a named one, a GGUF or HF folder."""
    from promptopt.models import lookup

    if model is None or lookup(model) is not None:
        return
    path = Path(model).expanduser()
    if path.is_file() or (path.is_dir() and (path / "config.json").is_file()):
        return
    from promptopt.urls import redact

    raise PromptoptError(
        f"--transfer {item} quantizes --model, but {redact(model)!r} is not a local model file",
        hint="pass --model as a .gguf file or HF folder, or transfer to .gguf paths instead",
    )


def transfer_targets(settings: StudySettings) -> list[Target]:
    """One llama.cpp :class:`Target` per ``--transfer`` item; files are made (quantized or
    exported) only when a target's model must load."""
    check_transfer(settings.transfer, settings.model)
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
