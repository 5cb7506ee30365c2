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
from dlworkshop.errors import CheckFailed, WorkshopError
from dlworkshop.settings import Settings

CHECKS = Path(__file__).resolve().parent / "checks"
# Tells the checks what to expect (a JSON file of verify_vars).
VARS_ENV = "DLWORKSHOP_VERIFY_VARS"


def verify(
    settings: Settings,
    inventory: Path,
    console: Console,
    limit: str | None = None,
    ca_file: Path | None = None,
) -> None:
    check_deployable(settings)
    if settings.hub.backend == "slurm":
        from dlworkshop.deploy.cluster import COMPUTE_GROUP, LOGIN_GROUP, cluster_hosts
        from dlworkshop.deploy.playbook_vars import cluster_verify_vars

        hosts = cluster_hosts(inventory, limit)
        checks = CHECKS / "test_cluster_hub.py"
        groups = f"ansible://{LOGIN_GROUP},ansible://{COMPUTE_GROUP}"
        wanted = cluster_verify_vars(settings)
    else:
        hosts, _ = load_inventory(inventory, limit)
        checks = CHECKS / "test_deployed_hub.py"
        groups = f"ansible://{GROUP}"
        wanted = verify_vars(settings)
    with tempfile.TemporaryDirectory(prefix="dlworkshop-verify-") as scratch:
        expected = Path(scratch) / "expected.json"
        if ca_file is not None:
            if not ca_file.is_file():
                raise WorkshopError(
                    f"--ca-file {ca_file} does not exist", fix="give the CA certificate (PEM)"
                )
            # A private CA (`files` certificates): the chain is checked against it instead.
            wanted["tls_ca_pem"] = ca_file.read_text()
        expected.write_text(json.dumps(wanted))
        command = [
            sys.executable,
            "-m",
            "pytest",
            str(checks),
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(CHECKS),
            f"--hosts={','.join(f'ansible://{host}' for host in hosts)}" if limit else f"--hosts={groups}",
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
