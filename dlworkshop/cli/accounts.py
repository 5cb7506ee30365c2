"""`dlworkshop accounts`: login sheets for the `accounts` login mode (`generate N`), and the names
learners claimed in `shared-code` mode (`release NAME`, `claim NAME`, `names`)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from dlworkshop.cli import app
from dlworkshop.cli.config import ConfigOption

accounts_app = typer.Typer(
    help="Accounts (`accounts` login mode) and claimed names (`shared-code` mode).", no_args_is_help=True
)
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


def _claims(config: Path | None, *command: str) -> str:
    """Run `python -m hub.claims COMMAND...` in the hub container of `dlworkshop up` (or of
    $DOCKER_HOST's engine); its one line of output."""
    from dlworkshop import local_hub
    from dlworkshop.errors import WorkshopError
    from dlworkshop.settings import load_settings

    settings = load_settings(config)
    if settings.auth.mode != "shared-code":
        raise WorkshopError(
            f"names are claimed only in shared-code mode (this workshop logs in with {settings.auth.mode})",
            fix="accounts mode: give the learner their slip again; github: they sign in with GitHub",
        )
    code, said = local_hub.run_in_hub(settings, ["python", "-m", "hub.claims", *command])
    if code == 3:  # the name is not claimed (release) or already claimed (claim)
        raise WorkshopError(said, fix="`dlworkshop accounts names` lists the claimed names")
    if code != 0:
        raise WorkshopError(
            f"the hub could not change its claimed names: {said}", fix="see `docker logs` of the hub"
        )
    return said


@accounts_app.command("release")
def release_command(
    name: str = typer.Argument(..., help="The name a learner claimed."),
    config: Path | None = ConfigOption,
) -> None:
    """shared-code mode: forget the secret of NAME, for a learner who forgot theirs. Their next
    login under NAME chooses a new secret and finds their server and files as they left them."""
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
    """shared-code mode: claim NAME with a secret (hashed here; only the hash reaches the hub).
    Admins' names (auth.admins) can only be claimed this way."""
    from dlworkshop.accounts import MIN_SECRET_LENGTH, hash_password
    from dlworkshop.errors import WorkshopError

    if len(secret) < MIN_SECRET_LENGTH:
        raise WorkshopError("that secret is too short", fix=f"type at least {MIN_SECRET_LENGTH} characters")
    console.print(_claims(config, "claim", name, hash_password(secret)), highlight=False)


@accounts_app.command("names")
def names_command(config: Path | None = ConfigOption) -> None:
    """shared-code mode: the names learners have claimed."""
    said = _claims(config, "list")
    console.print(said or "no name is claimed yet", highlight=False)
