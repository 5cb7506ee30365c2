"""The day and its end: `dlworkshop status` (the room at a glance), `dlworkshop export` (every
learner's work as a zip) and `dlworkshop close` (logins refused after the workshop)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from dlworkshop.cli import app, err_console
from dlworkshop.cli.config import ConfigOption

console = Console(soft_wrap=True)

HubOption = typer.Option(
    None,
    "--hub",
    help="A deployed hub's URL: go through its API with a token from $DLWORKSHOP_HUB_TOKEN "
    "(default: the hub container of `dlworkshop up` on this machine).",
)


@app.command()
def status(
    config: Path | None = ConfigOption,
    hub: str | None = HubOption,
    watch: bool = typer.Option(False, "--watch", "-w", help="Keep the table on screen, refreshed."),
    every: float = typer.Option(5.0, "--every", min=1.0, help="Seconds between refreshes with --watch."),
    as_json: bool = typer.Option(
        False, "--json", help="The same data as JSON (with --watch: one object a line, each refresh)."
    ),
) -> None:
    """The room at a glance, once or live (admins and helpers).

    Each learner's state (queued with place, starting, running, stopped, culled), since when, last
    activity, CPU and memory against the quota, kernels, GPU share and work-folder size; totals and
    the host's figures at the top. A deployed hub: --hub URL with an admin's or a helper's token."""
    from rich.live import Live

    from dlworkshop.clients import hub_admin
    from dlworkshop.clients.status import render
    from dlworkshop.clients.status import watch as keep_watching
    from dlworkshop.settings import load_settings

    settings = load_settings(config)

    def fetch() -> dict[str, Any]:
        return hub_admin.room_view(settings, hub)

    view = fetch()
    if as_json and not watch:
        console.out(json.dumps(view, indent=1), highlight=False)
        return
    if not watch:
        console.print(render(view))
        return
    try:
        if as_json:  # JSON lines, one each refresh; a failed refresh says why on stderr

            def show_json(shown: dict[str, Any], problem: str | None) -> None:
                if problem:
                    err_console.print(f"status: {problem}", highlight=False)
                else:
                    console.out(json.dumps(shown), highlight=False)

            console.out(json.dumps(view), highlight=False)
            keep_watching(fetch, show_json, every, view)
            return
        with Live(render(view), console=console, auto_refresh=False, screen=False) as live:
            keep_watching(
                fetch, lambda shown, problem: live.update(render(shown, problem), refresh=True), every, view
            )
    except KeyboardInterrupt:
        pass  # Ctrl-C is how one leaves the live table


@app.command()
def export(
    dest: Path = typer.Option(..., "--dest", help="Folder for the zips and manifest.csv."),
    config: Path | None = ConfigOption,
) -> None:
    """Each learner's work folder as one zip, with a manifest.

    Running and stopped servers alike, read from their volumes on this Docker engine ($DOCKER_HOST
    for a deployed hub's); lessons a learner never changed, data links and checkpoints left out."""
    from dlworkshop.clients.export import export as export_work
    from dlworkshop.settings import load_settings

    export_work(load_settings(config), dest, console)


@app.command()
def close(
    config: Path | None = ConfigOption,
    hub: str | None = HubOption,
    message: str | None = typer.Option(
        None,
        "--message",
        "-m",
        help="What a refused learner is told: where to get their work (default: workshop.export_notice).",
    ),
    reopen: bool = typer.Option(False, "--reopen", help="Accept logins again (before workshop.end)."),
) -> None:
    """End the workshop now: learners' logins refused, told where their work is.

    Generated accounts and claimed names log in no more; admins and helpers still can."""
    from dlworkshop.clients import hub_admin
    from dlworkshop.settings import load_settings

    settings = load_settings(config)
    if reopen:
        said = hub_admin.reopen(settings, hub)
    else:
        said = hub_admin.close(settings, hub, message or settings.workshop.export_notice)
    console.print(said, highlight=False)
