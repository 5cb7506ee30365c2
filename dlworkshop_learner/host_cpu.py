"""The host's busy CPU, from /proc/stat: read by the hub's admission (hub/admission.py, through
dlworkshop.capacity) and by a learner's server before it starts its kernel ahead
(dlworkshop_learner/kernel_ahead.py). A container without lxcfs reads its host's /proc/stat."""

from __future__ import annotations

import os
from pathlib import Path


def cpu_times(stat: Path = Path("/proc/stat")) -> tuple[int, int] | None:
    """(busy, total) jiffies of all the host's cores together since boot; None where /proc/stat
    cannot be read."""
    try:
        fields = [int(value) for value in stat.read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is counted in user time already
    return total - idle, total


class HostCpu:
    """Cores busy on the host since the last reading: the hub itself, running learners, anything
    else on the machine."""

    def __init__(self, stat: Path = Path("/proc/stat"), cores: float | None = None) -> None:
        self.stat = stat
        self.cores = cores or float(os.cpu_count() or 1)
        self._last = cpu_times(stat)

    def busy_cores(self) -> float | None:
        """Cores busy on average since the last call (None: nothing to tell yet)."""
        now, last = cpu_times(self.stat), self._last
        self._last = now
        if now is None or last is None or now[1] <= last[1]:
            return None
        return self.cores * (now[0] - last[0]) / (now[1] - last[1])
