"""Entry-point module: registers the ``llamacpp`` backend, the ``transfer`` command, and the
providers of model variants (``study --transfer``) and token-id generation (GReaTer's
``-o generator=llamacpp``). Imports neither llama_cpp nor torch (they load when a model does)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from promptopt import hookimpl

if TYPE_CHECKING:
    import typer

    from promptopt.components import Backend
    from promptopt.tokengen import TokenGeneratorProvider
    from promptopt.variants import VariantProvider


@hookimpl
def register_backends(register: Callable[[type[Backend]], None]) -> None:
    from promptopt_llamacpp.backend import LlamaCppBackend

    register(LlamaCppBackend)


@hookimpl
def register_commands(app: typer.Typer) -> None:
    from promptopt_llamacpp.cli import add_transfer_command

    add_transfer_command(app)


@hookimpl
def register_model_variants(register: Callable[[VariantProvider], None]) -> None:
    from promptopt_llamacpp.providers import LlamaCppVariants

    register(LlamaCppVariants())


@hookimpl
def register_token_generators(register: Callable[[TokenGeneratorProvider], None]) -> None:
    from promptopt_llamacpp.providers import LlamaCppTokenGenerators

    register(LlamaCppTokenGenerators())
