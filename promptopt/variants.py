"""Model variants: other versions of a model (quantizations such as ``q8_0`` or ``q4_k_m``, the
file as it is) and other model files, made and run by a backend plugin. ``promptopt study
--transfer`` evaluates a study's prompts again on them.

A backend plugin offers its variants by registering a :class:`VariantProvider` with the
``register_model_variants`` hook; the core finds providers with :func:`variant_providers` and
never imports the plugin. Every requested item is checked before any work (a one-line
:class:`~promptopt.errors.PromptoptError` when it cannot be used); files are made only when a
variant's model must load.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

#: The hook that registers :class:`VariantProvider` objects.
HOOK = "register_model_variants"


@dataclass(frozen=True)
class ModelVariant:
    """One model to evaluate on, checked but not yet made.

    ``label`` names it in reports; ``identity`` is cheap to compute (no file is read or made)
    and equal exactly when the variant's results are (it keys stored evaluations);
    ``build()`` returns the model argument of the provider's backend, making the file on first
    use (quantizing or exporting it, cached by the plugin)."""

    label: str
    identity: dict[str, Any]
    build: Callable[[], str]


class VariantProvider(Protocol):
    """What a backend plugin registers with ``register_model_variants``."""

    #: The registered backend that runs every variant (one provider per backend).
    backend: str

    def names(self) -> Sequence[str]:
        """The variant names it makes from a model, lower case (e.g. ``orig`` for the file as
        it is, ``q8_0``); a requested item that is none of them is a model file."""
        ...

    def variant(self, name: str, model: str | None) -> ModelVariant:
        """Variant ``name`` (one of :meth:`names`) of ``model`` (None: the default model),
        checked now: a model it cannot make the variant from is a one-line error."""
        ...

    def model_file(self, ref: str) -> ModelVariant:
        """Another model given by its path, checked now (it exists and is a model the backend
        loads): anything else is a one-line error."""
        ...


def variant_providers() -> dict[str, VariantProvider]:
    """Every registered provider, by the backend it runs (a backend registered twice is an
    error naming both plugins)."""
    from promptopt.pluginmanager import registered_providers

    return registered_providers(HOOK, "backend")
