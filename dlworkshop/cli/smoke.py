"""`dlworkshop smoke-test`: will this work at 09:00?"""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.console import Console

from dlworkshop.cli import app
from dlworkshop.cli.config import ConfigOption

console = Console(soft_wrap=True)


@app.command("smoke-test")
def smoke_test_command(
    hub: str | None = typer.Option(None, "--hub", help="URL of the deployed hub."),
    image: str | None = typer.Option(
        None, "--image", help="Test a learner image in a local container instead."
    ),
    episodes: list[str] | None = typer.Option(
        None, "--episodes", help="Only these episodes (name or number; repeat)."
    ),
    size: str = typer.Option("smoke", "--size", help="smoke (short runs) or full (the lesson's own sizes)."),
    report: Path = typer.Option(
        Path("smoke-report"), "--report", help="Folder for report.json/html and chart.png."
    ),
    password: str | None = typer.Option(
        None, "--password", help="Smoke-test learner's password (accounts mode)."
    ),
    config: Path | None = ConfigOption,
) -> None:
    """Log in, spawn, check packages, data, threads and GPU, and train every episode against its budget."""
    from dlworkshop.errors import WorkshopError
    from dlworkshop.settings import load_settings
    from dlworkshop.smoke.run import SmokeOptions, smoke_test

    if size not in ("smoke", "full"):
        raise WorkshopError(f"unknown size {size!r}", fix="use --size smoke or --size full")
    options = SmokeOptions(
        hub,
        image,
        episodes,
        size,
        report,
        password=password,
        token=os.environ.get("DLWORKSHOP_HUB_TOKEN"),  # type: ignore[arg-type]
    )
    smoke_test(load_settings(config), options, console)
