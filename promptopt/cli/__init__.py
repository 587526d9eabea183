"""The ``promptopt`` command line: core commands plus plugin commands (``register_commands``)."""

from __future__ import annotations

import sys

import click
import typer

from promptopt.errors import PromptoptError

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def build_app() -> typer.Typer:
    """The typer app with the core commands and every plugin's commands."""
    from promptopt.cli import evaluate, listing, run
    from promptopt.pluginmanager import get_plugin_manager

    app = typer.Typer(
        name="promptopt",
        help="Optimize prompts for small, open, local language models.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,  # plain click help: importing rich costs more than the 0.5 s goal
    )
    run.register(app)
    evaluate.register(app)
    listing.register(app)
    get_plugin_manager().hook.register_commands(app=app)
    return app


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors print one line and exit 2; ``--debug`` shows tracebacks."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    if debug:
        args.remove("--debug")
    try:
        command = typer.main.get_command(build_app())
        status = command.main(args=args, prog_name="promptopt", standalone_mode=False)
        if isinstance(status, int) and status != 0:  # typer turns Ctrl-C into a returned 130
            sys.exit(status)
    except PromptoptError as exc:
        if debug:
            raise
        hint = f" ({exc.hint})" if exc.hint else ""
        print(f"promptopt: error: {exc.message}{hint}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, click.exceptions.Abort):
        print("promptopt: interrupted", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
