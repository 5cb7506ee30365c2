"""`dlworkshop accounts generate N`: login sheets for the `accounts` login mode."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from dlworkshop.cli import app

accounts_app = typer.Typer(help="Accounts for the `accounts` login mode.", no_args_is_help=True)
app.add_typer(accounts_app, name="accounts")
console = Console(soft_wrap=True)


@accounts_app.command("generate")
def generate_command(
    count: int = typer.Argument(..., min=1, max=1000, help="How many accounts."),
    prefix: str = typer.Option("learner", "--prefix", help="Usernames are <prefix>01, <prefix>02..."),
    out: Path = typer.Option(Path("accounts"), "--out", help="Folder for the sheets."),
    config: Path | None = typer.Option(
        None, "--config", "-c", help="workshop.yaml (for the slips' title and URL)."
    ),
) -> None:
    """Generate usernames and passwords: a CSV for you, a hashed CSV for the hub, printable slips."""
    from dlworkshop.accounts import generate, write_sheets
    from dlworkshop.settings import load_settings

    settings = load_settings(config)
    files = write_sheets(generate(count, prefix), out, settings.workshop.name, settings.hub.url)
    table = Table("file", "for")
    table.add_row(str(files["plain"]), "you: usernames and passwords (keep it private)")
    table.add_row(str(files["hashed"]), "the hub: set auth.accounts_file to it")
    table.add_row(str(files["slips"]), "printing: one slip per learner")
    console.print(table)
