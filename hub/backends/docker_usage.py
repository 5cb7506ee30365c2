"""What learners' containers and their host use, from the Docker engine, for the room view.

The hub container has the Docker socket, so a deployed hub answers these as well as the hub of
`dlworkshop up`, with no SSH: CPU and memory of each learner container from the stats API (two
one-shot samples, as `docker stats` computes them), work-folder sizes from the engine's disk usage
(cached: the engine walks every volume to answer), and the host's cores, memory and disk from
/proc, which a container without lxcfs shares with its host.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker

from dlworkshop import contract
from dlworkshop.capacity import cpu_times
from hub.backends.base import HostUsage, LearnerServer, LearnerUsage

# Seconds between the two samples a CPU figure is the average of (as `docker stats` waits for its second).
SAMPLE_SECONDS = 0.5
# The engine's disk usage walks every volume on the host: asked at most this often.
VOLUME_SIZES_MAX_AGE = 30.0


@dataclass(frozen=True)
class Sample:
    taken: float  # time.monotonic()
    cpu_ns: int  # CPU time the container used since it started
    memory_used: int | None


def memory_without_cache(memory_stats: dict[str, Any]) -> int | None:
    """Memory in use less the reclaimable page cache, as `docker stats` shows it (cgroup v1 or v2)."""
    usage = memory_stats.get("usage")
    if usage is None:
        return None
    stats = memory_stats.get("stats") or {}
    for key in ("total_inactive_file", "inactive_file"):
        if key in stats and stats[key] < usage:
            return int(usage - stats[key])
    return int(usage)


def sample(api: docker.APIClient, container_id: str) -> Sample | None:
    try:
        stats = api.stats(container_id, stream=False, one_shot=True)
    except docker.errors.APIError:
        return None  # gone between the listing and the sample
    if str(stats.get("read", "")).startswith("0001-"):
        return None  # the engine read nothing (its log says why: e.g. a cgroup it cannot find)
    memory = stats.get("memory_stats") or {}
    return Sample(
        taken=time.monotonic(),
        cpu_ns=int(((stats.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage") or 0),
        memory_used=memory_without_cache(memory),
    )


def cores_used(first: Sample | None, second: Sample | None) -> float | None:
    if first is None or second is None or second.taken <= first.taken:
        return None
    return max(0.0, (second.cpu_ns - first.cpu_ns) / 1e9 / (second.taken - first.taken))


class VolumeSizes:
    """Sizes of the engine's volumes by name, from its disk usage, at most VOLUME_SIZES_MAX_AGE old."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sizes: dict[str, int] = {}
        self._taken = float("-inf")

    def get(self, api: docker.APIClient) -> dict[str, int]:
        with self._lock:
            if time.monotonic() - self._taken > VOLUME_SIZES_MAX_AGE:
                used = api.df()
                self._sizes = {
                    volume["Name"]: int(volume["UsageData"]["Size"])
                    for volume in used.get("Volumes") or []
                    if (volume.get("UsageData") or {}).get("Size", -1) >= 0
                }
                self._taken = time.monotonic()
            return dict(self._sizes)


VOLUME_SIZES = VolumeSizes()


def gpu_from_labels(labels: dict[str, str]) -> tuple[tuple[str, ...], int | None]:
    """The GPU share a learner's container holds, from the labels the GPU allocator put on it."""
    devices = tuple(d for d in labels.get(contract.LABEL_GPU_DEVICES, "").split(",") if d)
    cap = labels.get(contract.LABEL_GPU_MEMORY_CAP)
    return devices, int(cap) if cap and cap.isdigit() else None


def learner_usage(
    api: docker.APIClient,
    hub_name: str,
    servers: Iterable[LearnerServer],
    cpu_limit: float,
    memory_limit: int,
    threads: int = 8,
    pause: Callable[[float], None] = time.sleep,
) -> dict[str, LearnerUsage]:
    """Each live server's CPU (cores, over SAMPLE_SECONDS), memory against its limit, GPU share
    and work-folder size; containers sampled in parallel, twice."""
    live = [server for server in servers if server.state != "stopped"]
    if not live:
        return {}
    with ThreadPoolExecutor(min(threads, len(live)), thread_name_prefix="room-stats") as pool:
        first = list(pool.map(lambda s: sample(api, s.engine_id), live))
        pause(SAMPLE_SECONDS)
        second = list(pool.map(lambda s: sample(api, s.engine_id), live))
    sizes = VOLUME_SIZES.get(api)
    usage = {}
    for server, before, after in zip(live, first, second, strict=True):
        devices, cap = gpu_from_labels(dict(server.labels))
        usage[server.user] = LearnerUsage(
            cpu_used=cores_used(before, after),
            cpu_limit=cpu_limit,
            memory_used=after.memory_used if after else None,
            memory_limit=memory_limit,
            gpu_devices=devices,
            gpu_memory_mb=cap,
            work_bytes=sizes.get(contract.work_volume_name(hub_name, server.user)),
        )
    return usage


def memory_figures(meminfo: Path = Path("/proc/meminfo")) -> tuple[int, int]:
    """(total, available) bytes of the host's memory."""
    values = {}
    for line in meminfo.read_text().splitlines():
        key, _, rest = line.partition(":")
        values[key] = int(rest.split()[0]) * 1024
    return values["MemTotal"], values.get("MemAvailable", values.get("MemFree", 0))


def host_usage(pause: Callable[[float], None] = time.sleep) -> HostUsage:
    """The host's cores (and how many are busy), memory and the disk the hub's volume is on (the
    engine's data root, where learners' volumes and containers live too)."""
    before = cpu_times()
    pause(SAMPLE_SECONDS)
    after = cpu_times()
    cpus = os.cpu_count() or 1
    busy = None
    if before and after and after[1] > before[1]:
        busy = cpus * (after[0] - before[0]) / (after[1] - before[1])
    total, available = memory_figures()
    disk_path = Path(contract.HUB_DATA) if Path(contract.HUB_DATA).exists() else Path("/")
    disk = shutil.disk_usage(disk_path)
    return HostUsage(
        cpus=cpus,
        cpu_used=busy,
        memory_total=total,
        memory_available=available,
        disk_total=disk.total,
        disk_free=disk.free,
    )
