"""`dlworkshop share -i INVENTORY FILE...`: material into a deployed hub's shared folder, over SSH
with Ansible (ansible/share.yml), as `dlworkshop share` does for the hub on this machine."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from dlworkshop import contract
from dlworkshop.deploy.inventory import load_inventory
from dlworkshop.deploy.runner import run_playbook, summary_table
from dlworkshop.docker_host.shared_folder import announce_shared, check_shareable
from dlworkshop.errors import CheckFailed
from dlworkshop.settings import Settings

PLAYBOOK = "share.yml"


def share_remote(
    settings: Settings, inventory: Path, paths: list[Path], console: Console, limit: str | None = None
) -> list[str]:
    check_shareable(settings, paths, bring_up="dlworkshop deploy")
    load_inventory(inventory, limit)
    # A folder named without a trailing slash is copied as itself, under its own name.
    sources = [str(p.resolve()).rstrip("/") for p in paths]
    extravars = {
        "share_volume": contract.shared_volume_name(settings.hub.container_name),
        "share_sources": sources,
    }
    result = run_playbook(inventory, extravars, console, limit=limit, playbook=PLAYBOOK)
    console.print(summary_table(result.stats))
    if not result.succeeded:
        first = result.failures[0] if result.failures else result.status
        raise CheckFailed(f"sharing failed on {first}", fix="fix the cause and run `dlworkshop share` again")
    return announce_shared(paths, console)
