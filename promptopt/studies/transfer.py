"""``--transfer``: the study's prompts evaluated again on variants of the model (quantizations
such as ``q8_0`` or ``q4_k_m``) and on other model files, made and run by a plugin's
:class:`~promptopt.variants.VariantProvider` (hook ``register_model_variants``)."""

from __future__ import annotations

from promptopt.errors import PromptoptError
from promptopt.studies.plan import StudySettings
from promptopt.studies.targets import Target, backend_options
from promptopt.variants import ModelVariant, VariantProvider, variant_providers


def transfer_provider(settings: StudySettings) -> VariantProvider:
    """The provider of ``--transfer``'s variants: the only one installed, or with several the
    one of ``--eval-backend``; a one-line error when there is none."""
    providers = variant_providers()
    if not providers:
        raise PromptoptError(
            "--transfer needs a plugin that provides model variants, and none is installed",
            hint="install plugins/promptopt-llamacpp (with llama-cpp-python) or drop --transfer",
        )
    if len(providers) == 1:
        return next(iter(providers.values()))
    if settings.eval_backend in providers:
        return providers[settings.eval_backend]
    raise PromptoptError(
        f"--transfer: several plugins provide model variants ({', '.join(providers)})",
        hint="choose one with --eval-backend NAME",
    )


def transfer_variants(settings: StudySettings, provider: VariantProvider) -> list[ModelVariant]:
    """Each ``--transfer`` item, checked before any work: a name the provider knows is a
    variant of ``--model``, anything else a model file."""
    names = set(provider.names())
    variants: list[ModelVariant] = []
    for item in settings.transfer:
        if item.lower() in names:
            variants.append(provider.variant(item.lower(), settings.model))
        else:
            variants.append(provider.model_file(item))
    return variants


def transfer_targets(settings: StudySettings) -> list[Target]:
    """One :class:`Target` per ``--transfer`` item, all checked now; files are made (quantized
    or exported) only when a target's model must load."""
    if not settings.transfer:
        return []
    provider = transfer_provider(settings)
    variants = transfer_variants(settings, provider)
    options = backend_options(provider.backend, settings.options)
    return [
        Target(variant.label, provider.backend, variant.identity, options, variant.build)
        for variant in variants
    ]
