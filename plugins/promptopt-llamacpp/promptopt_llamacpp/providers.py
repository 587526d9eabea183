"""What the llamacpp plugin offers other parts of promptopt through the provider hooks:
quantizations and other GGUF files as model variants (``promptopt study --transfer``), and the
batched token-id generator (GReaTer's ``-o generator=llamacpp``). Nothing here imports llama_cpp
until a file is made or a model loads."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from promptopt.errors import PromptoptError
from promptopt.filehash import reference_identity
from promptopt.variants import ModelVariant

if TYPE_CHECKING:
    from promptopt_llamacpp.idgen import LlamaTokenGenerator

BACKEND = "llamacpp"


class LlamaCppVariants:
    """Quantizations of a local model (``orig``: the file as it is) made with llama.cpp's
    quantizer, and other GGUF files or HF model folders (exported to GGUF), run by the
    ``llamacpp`` backend."""

    backend = BACKEND

    def names(self) -> list[str]:
        from promptopt_llamacpp.quantize import ORIGINAL, QUANT_FTYPES

        return [ORIGINAL, *QUANT_FTYPES]

    def variant(self, name: str, model: str | None) -> ModelVariant:
        """A quantization needs a local model: the default or a named one, a GGUF or HF folder."""
        _check_quantizable(name, model)
        return ModelVariant(name, _identity(model, name), partial(_build, model, name))

    def model_file(self, ref: str) -> ModelVariant:
        """A known model name (``promptopt models``), a GGUF file (by its magic) or a folder
        with an HF ``config.json``."""
        from promptopt.models import lookup

        entry = lookup(ref)
        if entry is not None:
            if not entry.installed():
                entry.path()  # the one-line error naming the package to install
            # a portable identity (name and package version, not a path and its times), and
            # the file found (or assembled) only when the model must load
            identity = {"backend": BACKEND, "model": entry.identity(), "quant": "orig"}
            return ModelVariant(entry.name, identity, partial(_build_named, entry.name))
        _check_model_file(ref, f"--transfer item {ref!r}", self.names())
        path = str(Path(ref).expanduser().resolve())
        return ModelVariant(Path(ref).name, _identity(path, "orig"), partial(_build, path, "orig"))


def _identity(ref: str | None, quant: str) -> dict[str, Any]:
    return {"backend": BACKEND, "model": reference_identity(ref), "quant": quant}


def _build(ref: str | None, quant: str) -> str:
    """The variant's file, quantized (or exported) on first use and cached."""
    from promptopt_llamacpp.transfer import build_variants

    return str(build_variants([ref or "smollm2"], [quant])[0].path)


def _build_named(name: str) -> str:
    """The file of the model table's entry ``name``, assembled on first use."""
    from promptopt.models import lookup

    entry = lookup(name)
    assert entry is not None
    return _build(str(entry.path()), "orig")


def _check_model_file(ref: str, what: str, names: list[str]) -> None:
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
            hint=f"use {', '.join(names)} or a .gguf path",
        )
    try:
        check_gguf(path)
    except PromptoptError as exc:
        raise PromptoptError(f"{what}: {exc.message}", hint="pass a .gguf file") from None


def _check_quantizable(item: str, model: str | None) -> None:
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


class LlamaCppTokenGenerators:
    """:class:`~promptopt_llamacpp.idgen.LlamaTokenGenerator` on a GGUF of the weights."""

    name = BACKEND

    def available(self) -> bool:
        try:
            import llama_cpp  # noqa: F401

            import promptopt_llamacpp.idgen  # noqa: F401
        except ImportError:
            return False
        return True

    def weights_file(self, source: Path, dtype: Literal["f32", "f16"]) -> Path:
        from promptopt_llamacpp.modelfiles import gguf_for

        return gguf_for(source, dtype=dtype)

    def open(
        self, path: Path, *, n_threads: int, n_ctx: int, n_parallel: int
    ) -> LlamaTokenGenerator:
        from promptopt_llamacpp.idgen import LlamaTokenGenerator

        return LlamaTokenGenerator(path, n_threads=n_threads, n_ctx=n_ctx, n_parallel=n_parallel)
