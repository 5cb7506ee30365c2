"""`dlworkshop accounts`: login sheets for the `accounts` login mode (`generate N`), and the names
learners claimed in `shared-code` mode (`release NAME`, `claim NAME`, `names`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.table import Table

from dlworkshop.cli import command_group
from dlworkshop.cli.config import ConfigOption

if TYPE_CHECKING:
    from dlworkshop.settings import Settings

accounts_app = command_group(
    "accounts", "Accounts (`accounts` login mode) and claimed names (`shared-code` mode)."
)
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


HubOption = typer.Option(
    None,
    "--hub",
    help="A deployed hub's URL: go through its API with an admin's token from $DLWORKSHOP_HUB_TOKEN "
    "(default: the hub container of `dlworkshop up` on this machine).",
)


def _shared_code_settings(config: Path | None) -> Settings:
    from dlworkshop.errors import WorkshopError
    from dlworkshop.settings import load_settings

    settings = load_settings(config)
    if settings.auth.mode != "shared-code":
        raise WorkshopError(
            f"names are claimed only in shared-code mode (this workshop logs in with {settings.auth.mode})",
            fix="accounts mode: give the learner their slip again; github: they sign in with GitHub",
        )
    return settings


def _claims(config: Path | None, *command: str) -> str:
    """Run `python -m hub.claims COMMAND...` in the hub container of `dlworkshop up`; its output."""
    from dlworkshop.errors import WorkshopError
    from dlworkshop.local import local_hub

    code, said = local_hub.run_in_hub(_shared_code_settings(config), ["python", "-m", "hub.claims", *command])
    if code == 3:  # the name is not claimed (release) or already claimed (claim)
        raise WorkshopError(said, fix="`dlworkshop accounts names` lists the claimed names")
    if code != 0:
        raise WorkshopError(
            f"the hub could not change its claimed names: {said}", fix="see `docker logs` of the hub"
        )
    return said


def _claims_api(hub: str, method: str, name: str = "") -> dict[str, Any]:
    """The hub's `names` service (hub/claims.py), as an admin: what it answers."""
    from dlworkshop import contract
    from dlworkshop.errors import WorkshopError
    from dlworkshop.hubclient import HubClient, HubError

    token = os.environ.get("DLWORKSHOP_HUB_TOKEN")
    if not token:
        raise WorkshopError(
            "--hub needs an admin's API token in $DLWORKSHOP_HUB_TOKEN",
            fix=f"log in to {hub} as an admin, create a token at {hub.rstrip('/')}/hub/token and export it",
        )
    path = f"/services/{contract.NAMES_SERVICE}/claims" + (f"/{name}" if name else "")
    try:
        with HubClient(hub, token) as client:
            return dict(client.request(method, path).json())
    except HubError as refused:
        fixes = {
            403: "the token must be an admin's (auth.admins), created on the hub's token page",
            404: "`dlworkshop accounts names --hub URL` lists the claimed names",
        }
        raise HubError(refused.message, refused.status, fixes.get(refused.status or 0)) from None


@accounts_app.command("release")
def release_command(
    name: str = typer.Argument(..., help="The name a learner claimed."),
    hub: str | None = HubOption,
    config: Path | None = ConfigOption,
) -> None:
    """shared-code mode: forget the secret of NAME, for a learner who forgot theirs. Their next
    login under NAME chooses a new secret and finds their server and files as they left them."""
    if hub:
        released = _claims_api(hub, "DELETE", name.strip().lower())["released"]
        console.print(f"released {released}: the next login under {released} chooses a new secret")
    else:
        console.print(_claims(config, "release", name), highlight=False)


@accounts_app.command("claim")
def claim_command(
    name: str = typer.Argument(..., help="The name to claim, e.g. an admin's (the login form refuses to)."),
    secret: str = typer.Option(
        ...,
        prompt="the secret to log in with",
        hide_input=True,
        confirmation_prompt=True,
        envvar="DLWORKSHOP_SECRET",
        help="Asked for when not given ($DLWORKSHOP_SECRET gives it to scripts).",
    ),
    config: Path | None = ConfigOption,
) -> None:
    """shared-code mode: claim NAME with a secret (hashed here; only the hash reaches the hub), in
    the hub of `dlworkshop up`. Admins' names (auth.admins) can only be claimed this way; on a
    deployed hub: `docker exec -it <hub container> python -m hub.claims claim NAME` on its host."""
    from dlworkshop.accounts import MIN_SECRET_LENGTH, hash_password
    from dlworkshop.errors import WorkshopError

    if len(secret) < MIN_SECRET_LENGTH:
        raise WorkshopError("that secret is too short", fix=f"type at least {MIN_SECRET_LENGTH} characters")
    console.print(_claims(config, "claim", name, hash_password(secret)), highlight=False)


@accounts_app.command("names")
def names_command(hub: str | None = HubOption, config: Path | None = ConfigOption) -> None:
    """shared-code mode: the names learners have claimed."""
    said = "\n".join(_claims_api(hub, "GET")["names"]) if hub else _claims(config, "list")
    console.print(said or "no name is claimed yet", highlight=False)
