"""What blocks a hub's start on a machine, decided once: `dlworkshop check` reports it and
`dlworkshop up` refuses on it, so the two always agree.

A start is blocked by quotas that do not fit (memory, GPU places: dlworkshop.capacity), a file or
folder the settings name that is not there, the hub's port taken by something else, and plain HTTP
beyond localhost (dlworkshop.local.tls). Overcommitted CPUs are a warning (quotas shared by time), as is a
room larger than the host carries at once, and a Docker engine that would stop every learner's
container when it restarts (live-restore off).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dlworkshop import contract
from dlworkshop.capacity import CapacityReport, HostFacts, check_capacity
from dlworkshop.errors import ConfigError
from dlworkshop.local.tls import CLEAR_TEXT_FIX, clear_text_problem
from dlworkshop.needs import plan_verdict
from dlworkshop.settings import Settings, missing_files


@dataclass(frozen=True)
class StartCheck:
    capacity: CapacityReport
    problems: list[str]
    warnings: list[str]

    def raise_if_blocked(self, machine: str = "this machine") -> None:
        if self.problems:
            raise ConfigError(
                f"the hub cannot start with these settings on {machine} ({len(self.problems)} problem(s))",
                problems=self.problems,
                fix="see each problem; `dlworkshop check` shows the plan, `dlworkshop init` writes a "
                "workshop.yaml sized to this machine",
            )


def check_start(
    settings: Settings,
    host: HostFacts,
    port_taken: bool = False,
    this_machine: bool = True,
    live_restore: bool | None = None,
) -> StartCheck:
    """Everything that blocks (problems) or weakens (warnings) a start of this workshop's hub on
    `host`. `port_taken`: the hub's port is in use by something other than this hub itself.
    `this_machine` False: a plan for another machine, whose files and ports are not known here.
    `live_restore`: whether this machine's Docker engine keeps containers across its restarts
    (None: not known)."""
    capacity = check_capacity(settings, host)
    # The lesson's measured needs (dlworkshop/needs.py): a quota in which an episode cannot run.
    lesson_problems, lesson_warnings = plan_verdict(settings)
    problems = list(capacity.problems) + lesson_problems
    clear_text = clear_text_problem(settings)
    if clear_text:
        problems.append(f"{clear_text}; {CLEAR_TEXT_FIX}")
    if this_machine:
        problems += missing_files(settings, ("auth.accounts_file",))
        # Docker would create a missing bind source as an empty root-owned folder.
        problems += [
            f"resources.extra_mounts: {mount.source} is not a folder on this machine"
            for mount in settings.resources.extra_mounts
            if not Path(mount.source).is_dir()
        ]
    if this_machine and port_taken:
        hub = settings.hub
        problems.append(
            f"hub.port: port {hub.bind}:{hub.port} is already in use; stop what uses it, "
            "or set hub.port in workshop.yaml"
        )
    warnings = list(capacity.warnings) + lesson_warnings
    if this_machine and contract.DOCKER_LIVE_RESTORE and live_restore is False:
        warnings.append(
            "the Docker engine here stops every container when it restarts (an upgrade, a changed "
            'daemon.json): learners lose their kernels. Add "live-restore": true to '
            "/etc/docker/daemon.json and run `systemctl reload docker` (no restart needed); the "
            "deploy sets it"
        )
    return StartCheck(capacity, problems, warnings)
