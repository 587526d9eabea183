"""Entry-point module: registers the ``llamacpp`` backend and the ``transfer``
command. Imports neither llama_cpp nor torch (they load when a model does)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from promptopt import hookimpl

if TYPE_CHECKING:
    import typer

    from promptopt.components import Backend


@hookimpl
def register_backends(register: Callable[[type[Backend]], None]) -> None:
    from promptopt_llamacpp.backend import LlamaCppBackend

    register(LlamaCppBackend)


@hookimpl
def register_commands(app: typer.Typer) -> None:
    from promptopt_llamacpp.cli import add_transfer_command

    add_transfer_command(app)
