"""`dlworkshop deploy` and `dlworkshop verify`: the hub on remote hosts through Ansible."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from dlworkshop.cli import app
from dlworkshop.cli.config import ConfigOption
from dlworkshop.cli.extras import require_extra

console = Console(soft_wrap=True)

InventoryOption = typer.Option(..., "--inventory", "-i", help="Ansible inventory with a `workshop` group.")
LimitOption = typer.Option(None, "--limit", help="Only these hosts (comma-separated names).")


@app.command()
def deploy(
    inventory: Path = InventoryOption,
    config: Path | None = ConfigOption,
    check: bool = typer.Option(False, "--check", help="Show what would change; change nothing."),
    limit: str | None = LimitOption,
) -> None:
    """Put the workshop hub (Docker, images, hub, TLS, firewall) on the inventory's hosts."""
    from dlworkshop.docker_host.hub_runtime import require_docker_hub
    from dlworkshop.settings import load_settings

    settings = load_settings(config)
    require_docker_hub(settings, "deploy")
    from dlworkshop.needs import refuse_if_cannot_teach

    refuse_if_cannot_teach(settings)
    require_extra("deploy", "deploy")
    from dlworkshop.deploy.deploy import deploy as run_deploy

    run_deploy(settings, inventory, console, check=check, limit=limit)


@app.command()
def verify(
    inventory: Path = InventoryOption,
    config: Path | None = ConfigOption,
    limit: str | None = LimitOption,
    ca_file: Path | None = typer.Option(
        None, "--ca-file", help="Trust this CA (PEM) for the hub's certificate instead of the system's."
    ),
) -> None:
    """Prove a deployed hub works: the testinfra suite against the inventory's hosts."""
    require_extra("deploy", "verify")
    from dlworkshop.deploy.verify import verify as run_verify
    from dlworkshop.settings import load_settings

    run_verify(load_settings(config), inventory, console, limit=limit, ca_file=ca_file)
