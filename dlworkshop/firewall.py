"""Host firewall rules that `dlworkshop up` installs for the learners' bridge (the deploy's
`workshop_firewall` role installs the same ones with Ansible)."""

from __future__ import annotations

import shutil
import subprocess

from dlworkshop import contract
from dlworkshop.errors import WorkshopError


def metadata_rule(interface: str) -> list[str]:
    """Keeps learner containers off the cloud metadata address (credentials live there)."""
    return ["DOCKER-USER", "-i", interface, "-d", contract.METADATA_ADDRESS, "-j", "DROP"]


def install_metadata_rule(interface: str) -> bool:
    """Insert the rule unless present; returns whether it was added."""
    if shutil.which("iptables") is None:
        raise WorkshopError(
            "iptables is missing: learners could reach the cloud metadata address",
            fix="apt-get install iptables",
        )
    rule = metadata_rule(interface)
    if subprocess.run(["iptables", "-C", *rule], capture_output=True).returncode == 0:
        return False
    added = subprocess.run(["iptables", "-I", *rule], capture_output=True, text=True)
    if added.returncode != 0:
        raise WorkshopError(
            f"could not install the firewall rule for {contract.METADATA_ADDRESS}: {added.stderr.strip()}",
            fix="run `dlworkshop up` as root (or with CAP_NET_ADMIN)",
        )
    return True


def remove_metadata_rule(interface: str) -> None:
    if shutil.which("iptables"):
        while (
            subprocess.run(["iptables", "-D", *metadata_rule(interface)], capture_output=True).returncode == 0
        ):
            pass
