"""The `dlworkshop` command. Each concern has its own module here; this one ties them together
and is the one place where user-caused errors become one line and an exit code."""

from __future__ import annotations

import importlib
import sys

import typer
from rich.console import Console
from rich.markup import escape

import dlworkshop.engines  # noqa: F401  (every engine's table of what it refuses, before settings load)
from dlworkshop.errors import ConfigError, WorkshopError

app = typer.Typer(
    name="dlworkshop",
    help="Run the 'Introduction to deep learning' lesson as a workshop: data, image, hub, deploy, tests.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
err_console = Console(stderr=True, soft_wrap=True)


def command_group(name: str, help: str) -> typer.Typer:
    """A group of subcommands (`dlworkshop NAME ...`), registered on the main command."""
    group = typer.Typer(help=help, no_args_is_help=True)
    app.add_typer(group, name=name)
    return group


_state = {"debug": False}

# Modules that add commands to `app`, in the order they appear in --help.
COMMAND_MODULES = ("config", "data", "image", "env", "hub", "room", "accounts", "smoke", "deploy", "render")


@app.callback()
def _options(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks instead of one-line errors."),
) -> None:
    _state["debug"] = debug


def _register_commands() -> None:
    for name in COMMAND_MODULES:
        try:
            importlib.import_module(f"dlworkshop.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"dlworkshop.cli.{name}":
                raise


def report_error(error: WorkshopError) -> None:
    """Print a user-caused error: the message, every problem found, and the fix (as written: a
    `[deploy]` in them is text, not markup)."""
    err_console.print(f"[bold red]error:[/] {escape(error.message)}", highlight=False)
    if isinstance(error, ConfigError):
        for problem in error.problems:
            err_console.print(f"  - {escape(problem)}", highlight=False)
    if error.fix:
        err_console.print(f"[bold]fix:[/] {escape(error.fix)}", highlight=False)


def main() -> None:
    _register_commands()
    try:
        app()
    except WorkshopError as error:
        if _state["debug"]:
            raise
        report_error(error)
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
