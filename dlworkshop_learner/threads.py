"""Thread pools sized to the container's CPU quota: TensorFlow, OpenMP and BLAS otherwise start one
thread per host core, and 40 learners on one host then fight over every core."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path

from dlworkshop_learner import layout

THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
)


def cpu_quota(
    cgroup_root: Path = Path("/sys/fs/cgroup"), environ: Mapping[str, str] | None = None
) -> float | None:
    """CPUs this container may use: the cgroup v2 or v1 CFS quota, else JupyterHub's CPU_LIMIT."""
    environ = os.environ if environ is None else environ
    v2 = cgroup_root / "cpu.max"
    try:
        if v2.is_file():
            quota, period = v2.read_text().split()[:2]
            if quota != "max":
                return int(quota) / int(period)
        for v1 in (cgroup_root / "cpu", cgroup_root / "cpu,cpuacct", cgroup_root):
            quota_file = v1 / "cpu.cfs_quota_us"
            if quota_file.is_file():
                microseconds = int(quota_file.read_text())
                if microseconds > 0:
                    return microseconds / int((v1 / "cpu.cfs_period_us").read_text())
                break
    except (OSError, ValueError):
        pass
    try:
        limit = environ.get(layout.CPU_LIMIT_ENV)
        return float(limit) if limit else None
    except ValueError:
        return None


def thread_count(quota: float | None, cores: int | None = None) -> int:
    """Threads per pool: the quota rounded up, never more than the cores, never less than 1."""
    cores = cores or os.cpu_count() or 1
    if quota is None:
        return cores
    return max(1, min(cores, math.ceil(quota - 1e-9)))


def thread_variables(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Every thread variable, for this container's quota; a value the deployer set explicitly wins."""
    environ = os.environ if environ is None else environ
    threads = str(thread_count(cpu_quota(environ=environ)))
    return {name: environ.get(name) or threads for name in THREAD_VARIABLES}
