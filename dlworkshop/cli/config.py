"""`dlworkshop init` and `dlworkshop check`: write and validate workshop.yaml."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from dlworkshop.cli import app
from dlworkshop.errors import WorkshopError
from dlworkshop.settings import DEFAULT_CONFIG_NAME, load_settings
from dlworkshop.templates import example_config

console = Console(soft_wrap=True)

ConfigOption = typer.Option(None, "--config", "-c", help="workshop.yaml to read (default: ./workshop.yaml).")


@app.command()
def init(
    path: Path = typer.Argument(Path(DEFAULT_CONFIG_NAME), help="Where to write the example."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Write a commented example workshop.yaml to edit."""
    if path.exists() and not force:
        raise WorkshopError(f"{path} already exists", fix="edit it, or pass --force to overwrite it")
    path.write_text(example_config(), encoding="utf-8")
    console.print(f"Wrote {path}. Edit it, then run `dlworkshop check -c {path}`.")


@app.command()
def check(config: Path | None = ConfigOption) -> None:
    """Validate workshop.yaml and print every problem at once."""
    settings = load_settings(config)
    console.print(
        f"[green]ok[/]: {settings.workshop.name!r}, {settings.learners.total} learners, "
        f"login {settings.auth.mode}, image {settings.image.reference} ({settings.image.variant})"
    )
