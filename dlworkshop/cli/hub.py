"""`dlworkshop up` and `dlworkshop down`: the workshop hub on this machine."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel

from dlworkshop.cli import app
from dlworkshop.cli.config import ConfigOption

if TYPE_CHECKING:
    from dlworkshop.settings import Settings

console = Console(soft_wrap=True)


@app.command()
def up(
    config: Path | None = ConfigOption,
    rebuild: bool = typer.Option(False, "--rebuild", help="Rebuild the learner and hub images first."),
) -> None:
    """Build what is missing, start the hub, wait until it answers, print how to log in."""
    from dlworkshop.local import local_hub
    from dlworkshop.settings import load_settings

    settings = load_settings(config)
    url = local_hub.up(settings, console, rebuild=rebuild)
    announce(console, settings, url)


def how_to_log_in(settings: Settings, url: str) -> tuple[str, list[str]]:
    """The closing message of `up`: a title and its lines (rich markup)."""
    code = settings.auth.access_code.get_secret_value() if settings.auth.access_code else ""
    how = {
        "shared-code": f"type the workshop code [bold]{escape(code)}[/], a name and a secret of their own "
        "(the first login claims the name; later logins need the same secret)",
        "accounts": "use the username and password on your login slip",
        "github": "sign in with GitHub",
    }[settings.auth.mode]
    lines = [f"The workshop hub is up at [bold]{escape(url)}[/]", f"Learners: open it, {how}."]
    if settings.auth.mode == "shared-code" and settings.auth.admins:
        # The form refuses to hand out an admin's name: whoever typed it first would be admin.
        lines.append("Admins: claim your names first with `dlworkshop accounts claim NAME`.")
    return escape(settings.workshop.name), lines


def announce(console: Console, settings: Settings, url: str) -> None:
    """In a terminal, a panel whose lines wrap between words; elsewhere (a log, a pipe), one line
    each, never cut or wrapped at the 80 columns rich assumes there."""
    title, lines = how_to_log_in(settings, url)
    if console.is_terminal:
        console.print(Panel("\n".join(lines), title=title), soft_wrap=False)
        return
    for line in (f"[bold]{title}[/]", *lines):
        console.print(line, soft_wrap=True, highlight=False)


@app.command()
def down(
    config: Path | None = ConfigOption,
    purge: bool = typer.Option(False, "--purge", help="Also delete learners' work and the hub's database."),
    force: bool = typer.Option(
        False, "--force", help="With --purge: delete even work that no `dlworkshop export` holds."
    ),
) -> None:
    """Stop the hub and the learners' servers; learners' work is kept unless --purge.

    --purge refuses while a learner's work changed since the last `dlworkshop export`, or was never
    exported (unless --force)."""
    from dlworkshop.local import local_hub
    from dlworkshop.settings import load_settings

    local_hub.down(load_settings(config), purge, console, force=force)


@app.command()
def prewarm(
    config: Path | None = ConfigOption,
    timeout: float = typer.Option(1800, "--timeout", help="Seconds to wait for every server."),
) -> None:
    """Start the learners' servers now, before they arrive (by name, or as seats in shared-code mode)."""
    from dlworkshop.local import local_hub
    from dlworkshop.settings import load_settings

    local_hub.prewarm(load_settings(config), console, timeout)


@app.command()
def share(
    paths: list[Path] = typer.Argument(
        ..., help="Files and folders to hand out (copied under their own names)."
    ),
    config: Path | None = ConfigOption,
    inventory: Path | None = typer.Option(
        None,
        "--inventory",
        "-i",
        help="A deployed hub's Ansible inventory (default: the hub on this machine).",
    ),
) -> None:
    """Copy material into the running hub's shared folder: every learner sees it at once,
    read-only, at ~/work/shared."""
    from dlworkshop.settings import load_settings

    settings = load_settings(config)
    if inventory is None:
        from dlworkshop.local import local_hub

        local_hub.share(settings, paths, console)
        return
    from dlworkshop.cli.extras import require_extra

    require_extra("deploy", "share --inventory")
    from dlworkshop.deploy.share import share_remote

    share_remote(settings, inventory, paths, console)
