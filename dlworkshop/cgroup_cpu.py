"""CPU seconds a Docker container has used, read from the host's cgroup files.

Docker's stats API is the obvious source, but it is not always right: Docker 20.10 (Debian 12's)
on a cgroup v1 host with a recent kernel reports 0 CPU for every container. The kernel's own
accounting, which the stats API reads too, is always there: cpuacct.usage (v1) or cpu.stat (v2),
in the container's cgroup. The hub reads it through the host's /sys/fs/cgroup mounted read-only
(contract.HUB_HOST_CGROUP); the benchmarks read the host's directly.
"""

from __future__ import annotations

import re
from pathlib import Path

from dlworkshop import contract

# Docker names a container's cgroup by its full id. Anything else (an empty id, once a spawner has
# forgotten its stopped container) would name a parent cgroup: the CPU of every container together.
CONTAINER_ID = re.compile(r"[0-9a-f]{64}")


def container_cgroups(container_id: str) -> list[tuple[str, str]]:
    """Where a container's CPU accounting lives under the cgroup root, for each layout Docker uses:
    (relative path, file) for cgroup v1 (cgroupfs driver, then systemd driver), then v2."""
    v1 = [
        f"{controller}/{parent}"
        for controller in ("cpuacct", "cpu,cpuacct")
        for parent in (f"docker/{container_id}", f"system.slice/docker-{container_id}.scope")
    ]
    v2 = [f"system.slice/docker-{container_id}.scope", f"docker/{container_id}"]
    return [(path, "cpuacct.usage") for path in v1] + [(path, "cpu.stat") for path in v2]


def container_cpu_seconds(container_id: str, root: Path = Path(contract.HOST_CGROUP)) -> float | None:
    """CPU seconds the container's processes have used so far (children included, the kernel's
    count); None where no cgroup of that container is found under `root`, or `container_id` is not
    a full container id."""
    if not CONTAINER_ID.fullmatch(container_id or ""):
        return None
    for relative, name in container_cgroups(container_id):
        try:
            text = (root / relative / name).read_text()
        except OSError:
            continue
        if name == "cpuacct.usage":
            return int(text) / 1e9
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "usage_usec":
                return int(value) / 1e6
    return None
