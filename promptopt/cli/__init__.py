"""The ``promptopt`` command line: core commands plus plugin commands (``register_commands``)."""

from __future__ import annotations

import sys
from typing import Any, Protocol, runtime_checkable

import typer

from promptopt.errors import PromptoptError

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def _classes(name: str) -> tuple[type[BaseException], ...]:
    """``name`` from every click that may parse our command line: the ``click`` package and
    the copy newer typer releases bundle (``typer._click``, with ``Exit``/``Abort`` in
    ``typer.exceptions``). Catching only one of them lets usage errors escape as tracebacks."""
    import importlib

    found: list[type[BaseException]] = []
    for module in ("click.exceptions", "typer._click.exceptions", "typer.exceptions"):
        try:
            cls = getattr(importlib.import_module(module), name, None)
        except ImportError:
            continue
        if isinstance(cls, type) and issubclass(cls, BaseException) and cls not in found:
            found.append(cls)
    return tuple(found)


@runtime_checkable
class ShowsItself(Protocol):
    """An error that prints its own message (click's ``ClickException.show``)."""

    def show(self) -> None: ...


CLICK_ERRORS = _classes("ClickException")
CLICK_EXITS = _classes("Exit")
CLICK_ABORTS = _classes("Abort")
INTERRUPTS: tuple[type[BaseException], ...] = (KeyboardInterrupt, *CLICK_ABORTS)


def build_app() -> typer.Typer:
    """The typer app with the core commands and every plugin's commands."""
    from promptopt.cli import evaluate, listing, models, run, study
    from promptopt.pluginmanager import get_plugin_manager

    app = typer.Typer(
        name="promptopt",
        help=(
            "Optimize prompts for small, open, local language models.\n\n"
            "Errors are one line; add --debug to any command to see the traceback."
        ),
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,  # plain click help: importing rich costs more than the 0.5 s goal
    )
    run.register(app)
    evaluate.register(app)
    listing.register(app)
    study.register(app)
    models.register(app)
    get_plugin_manager().hook.register_commands(app=app)
    return app


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors print one line and exit 2; ``--debug`` shows tracebacks."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    if debug:
        args.remove("--debug")
    import warnings

    previous = warnings.showwarning
    if not debug:
        warnings.showwarning = _one_line_warning(previous)
    try:
        command = typer.main.get_command(build_app())
        status = command.main(args=args, prog_name="promptopt", standalone_mode=False)
        if isinstance(status, int) and status != 0:  # typer turns Ctrl-C into a returned 130
            sys.exit(status)
    except PromptoptError as exc:
        if debug:
            raise
        from promptopt.urls import redact_text

        hint = f" ({exc.hint})" if exc.hint else ""
        print(f"promptopt: error: {redact_text(exc.message + hint)}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    except CLICK_EXITS as exc:
        sys.exit(_exit_code(exc))
    except CLICK_ERRORS as exc:
        if debug:
            raise
        if isinstance(exc, ShowsItself):  # every ClickException does
            exc.show()
        else:
            print(f"promptopt: error: {exc}", file=sys.stderr)
        sys.exit(_exit_code(exc))
    except INTERRUPTS:
        print("promptopt: interrupted", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    finally:
        warnings.showwarning = previous


def _one_line_warning(fallback: Any) -> Any:
    """A ``warnings.showwarning`` that prints promptopt's own warnings (skipped bad rows,
    questions repeated across splits) as one ``promptopt: warning: ...`` line, like its errors;
    other libraries' warnings keep their usual form."""

    def show(message: Any, category: Any, filename: str, lineno: int, *rest: Any) -> None:
        if str(getattr(category, "__module__", "")).startswith("promptopt"):
            print(f"promptopt: warning: {message}", file=sys.stderr)
        else:
            fallback(message, category, filename, lineno, *rest)

    return show


def _exit_code(exc: Any) -> int:
    code = getattr(exc, "exit_code", EXIT_USER_ERROR)
    return code if isinstance(code, int) else EXIT_USER_ERROR
