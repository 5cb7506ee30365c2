"""`dlworkshop verify`: the shipped testinfra suite run against the inventory's hosts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from rich.console import Console

from dlworkshop.deploy.inventory import GROUP, load_inventory
from dlworkshop.deploy.playbook_vars import check_deployable, verify_vars
from dlworkshop.errors import CheckFailed
from dlworkshop.settings import Settings

CHECKS = Path(__file__).resolve().parent / "checks"
# Tells the checks what to expect (a JSON file of verify_vars).
VARS_ENV = "DLWORKSHOP_VERIFY_VARS"


def verify(
    settings: Settings,
    config_path: Path | None,
    inventory: Path,
    console: Console,
    limit: str | None = None,
) -> None:
    check_deployable(settings, config_path.resolve().parent if config_path else None)
    hosts, _ = load_inventory(inventory, limit)
    with tempfile.TemporaryDirectory(prefix="dlworkshop-verify-") as scratch:
        expected = Path(scratch) / "expected.json"
        expected.write_text(json.dumps(verify_vars(settings)))
        command = [
            sys.executable,
            "-m",
            "pytest",
            str(CHECKS),
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(CHECKS),
            f"--hosts={','.join(f'ansible://{host}' for host in hosts)}"
            if limit
            else f"--hosts=ansible://{GROUP}",
            f"--ansible-inventory={inventory.resolve()}",
            "--sudo",
            "-v",
            "-rs",
        ]
        console.print(f"verifying {', '.join(hosts)}", highlight=False)
        env = {
            **os.environ,
            VARS_ENV: str(expected),
            "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
        }
        result = subprocess.run(command, env=env)
    if result.returncode != 0:
        raise CheckFailed(
            "verify found problems on the host(s) (failed checks listed above)",
            fix="run `dlworkshop deploy` again, or fix what the failed checks name",
        )
    console.print("[green]every check passed[/]")
