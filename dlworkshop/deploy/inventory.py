"""The inventory, checked before any host is touched: it parses, it has a `workshop` group with
hosts, and --limit names some of them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from dlworkshop.errors import WorkshopError

GROUP = "workshop"


def ansible_tool(name: str) -> str:
    """Ansible's commands from the same environment as this Python (a venv need not be on PATH)."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else name


def hosts_in(listing: dict[str, Any], group: str = GROUP) -> list[str]:
    """Hosts of a group in `ansible-inventory --list` output, children included."""
    seen: list[str] = []
    pending = [group]
    while pending:
        entry = listing.get(pending.pop(0), {})
        for host in entry.get("hosts", []):
            if host not in seen:
                seen.append(host)
        pending.extend(entry.get("children", []))
    return seen


def limited(hosts: list[str], limit: str | None) -> list[str]:
    """Hosts a --limit keeps: comma-separated names (Ansible's patterns beyond that are not checked)."""
    if not limit:
        return hosts
    wanted = [name.strip() for name in limit.split(",") if name.strip()]
    return [host for host in hosts if host in wanted]


def load_inventory(
    path: Path, limit: str | None = None, group: str = GROUP
) -> tuple[list[str], dict[str, Any]]:
    """Parse with Ansible itself; returns the hosts of `group` to deploy and their variables."""
    if not path.exists():
        raise WorkshopError(
            f"inventory {path} does not exist", fix="give the path of an Ansible inventory file"
        )
    env = {
        **os.environ,
        # A file Ansible cannot parse is an error, not a warning and an empty inventory.
        "ANSIBLE_INVENTORY_UNPARSED_FAILED": "true",
        "ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED": "true",
        "ANSIBLE_NOCOLOR": "1",
    }
    result = subprocess.run(
        [ansible_tool("ansible-inventory"), "-i", str(path), "--list"],
        capture_output=True,
        text=True,
        env=env,
    )
    if result.returncode != 0:
        reason = " ".join(
            line.strip() for line in result.stderr.splitlines() if line.strip() and "WARNING" not in line
        )
        raise WorkshopError(
            f"inventory {path} cannot be read: {reason[:300] or 'ansible-inventory failed'}",
            fix="fix the inventory (YAML or INI); ansible/inventories/example.yml shows one",
        )
    listing = json.loads(result.stdout)
    hosts = hosts_in(listing, group)
    if not hosts:
        raise WorkshopError(
            f"inventory {path} has no hosts in the `{group}` group",
            fix=f"list the hub's host(s) under `{group}:` (see ansible/inventories/)",
        )
    chosen = limited(hosts, limit)
    if not chosen:
        raise WorkshopError(
            f"--limit {limit} matches none of the {group} hosts ({', '.join(hosts)})",
            fix="name one of the inventory's hosts",
        )
    return chosen, listing.get("_meta", {}).get("hostvars", {})
