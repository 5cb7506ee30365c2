"""The host firewall rules that keep learners' containers to themselves, defined once: `dlworkshop
up` installs them with iptables (and removes them on `down`), the deploy's `workshop_firewall` role
receives the same list as an extra var (`playbook_vars`) and installs each with
ansible.builtin.iptables, plus a unit that puts them back at boot.

- Learners' bridge to the cloud metadata address (credentials live there): dropped (DOCKER-USER,
  the forwarded traffic Docker leaves to the admin).
- Learners' bridge to the host itself (sshd, the Docker API on TCP, an exporter, anything listening
  on 0.0.0.0): new connections dropped (INPUT). The hub is a container on the same bridge: learners
  reach its API over the bridge, which never passes INPUT, so the hub needs no exception here.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import asdict, dataclass

from dlworkshop import contract
from dlworkshop.errors import WorkshopError

METADATA_COMMENT = "dlworkshop learners off the metadata address"
HOST_COMMENT = "dlworkshop learners off the host"


@dataclass(frozen=True)
class Rule:
    """One iptables rule, in the fields of ansible.builtin.iptables (which builds the same rule:
    interface, destination, then the conntrack match before the comment match)."""

    chain: str
    in_interface: str
    jump: str
    comment: str
    destination: str | None = None
    ctstate: tuple[str, ...] = ()

    def argv(self) -> list[str]:
        """The rule as iptables' arguments after -C, -I or -D."""
        args = [self.chain, "-i", self.in_interface]
        if self.destination:
            args += ["-d", self.destination]
        if self.ctstate:
            args += ["-m", "conntrack", "--ctstate", ",".join(self.ctstate)]
        return [*args, "-m", "comment", "--comment", self.comment, "-j", self.jump]

    def as_vars(self) -> dict[str, object]:
        """For the role: the module's fields, and the arguments its boot unit passes to iptables."""
        return {**asdict(self), "ctstate": list(self.ctstate), "argv": self.argv()}


def learner_rules(bridge: str, block_host: bool = True) -> list[Rule]:
    """What learners on `bridge` may not reach."""
    rules = [Rule("DOCKER-USER", bridge, "DROP", METADATA_COMMENT, destination=contract.METADATA_ADDRESS)]
    if block_host:
        rules.append(Rule("INPUT", bridge, "DROP", HOST_COMMENT, ctstate=("NEW",)))
    return rules


def _iptables(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["iptables", *args], capture_output=True, text=True)


def install_rules(bridge: str) -> list[Rule]:
    """Insert each rule unless present; returns those added (to roll back on a failed `up`)."""
    if shutil.which("iptables") is None:
        raise WorkshopError(
            "iptables is missing: learners could reach the host's services and the cloud metadata address",
            fix="apt-get install iptables",
        )
    added: list[Rule] = []
    for rule in learner_rules(bridge):
        if _iptables("-C", *rule.argv()).returncode == 0:
            continue
        inserted = _iptables("-I", *rule.argv())
        if inserted.returncode != 0:
            for done in added:
                _iptables("-D", *done.argv())
            raise WorkshopError(
                f"could not install the firewall rule '{rule.comment}': {inserted.stderr.strip()}",
                fix="run `dlworkshop up` as root (or with CAP_NET_ADMIN)",
            )
        added.append(rule)
    return added


def remove_rules(bridge: str, rules: list[Rule] | None = None) -> None:
    """Every copy of the rules for `bridge` (or just `rules`) gone."""
    if shutil.which("iptables") is None:
        return
    for rule in rules if rules is not None else learner_rules(bridge):
        while _iptables("-D", *rule.argv()).returncode == 0:
            pass
