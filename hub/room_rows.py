"""One learner's row of the room view (hub/room.py) and the room's totals, from what the hub, the
engine and the learner's server say; and the stop book, kept on the hub volume, that says who was
culled. Pure functions apart from the stop book's file."""

from __future__ import annotations

import json
import os
import threading
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from hub.backends.base import HostUsage, LearnerUsage

# A stop this close to the culler's request for it was the culler's.
CULL_MATCH = timedelta(seconds=120)
STATES = ("queued", "starting", "running", "stopping", "stopped", "culled", "not started")


def utc(moment: datetime | None) -> datetime | None:
    """JupyterHub's database keeps naive UTC times."""
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def iso(moment: datetime | None) -> str | None:
    moment = utc(moment)
    return moment.isoformat(timespec="seconds") if moment else None


class StopBook:
    """When each learner's server last stopped, and whether the culler stopped it: kept on the hub
    volume (the hub process writes it alone), so a restarted hub still says who was culled."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            self._stops: dict[str, dict[str, str]] = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            self._stops = {}

    def stopped(self, user: str, at: datetime | None = None) -> None:
        self._note(user, "stopped", at)

    def culled(self, user: str, at: datetime | None = None) -> None:
        self._note(user, "culled", at)

    def last(self, user: str) -> tuple[datetime, bool] | None:
        """When the user's server last stopped, and whether the culler stopped it."""
        entry = self._stops.get(user, {})
        if "stopped" not in entry:
            return None
        stopped = datetime.fromisoformat(entry["stopped"])
        culled = "culled" in entry and abs(datetime.fromisoformat(entry["culled"]) - stopped) <= CULL_MATCH
        return stopped, culled

    def _note(self, user: str, what: str, at: datetime | None) -> None:
        with self._lock:
            entry = self._stops.setdefault(user, {})
            entry[what] = (at or datetime.now(timezone.utc)).isoformat(timespec="seconds")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            scratch = self.path.with_suffix(".tmp")
            scratch.write_text(json.dumps(self._stops, indent=1, sort_keys=True))
            os.replace(scratch, self.path)


def server_state(pending: str | None, phase: str, ready: bool, stop: tuple[datetime, bool] | None) -> str:
    """One learner's state from what the hub knows of their default server."""
    if pending == "spawn":
        return "queued" if phase == "queued" else "starting"
    if pending == "stop":
        return "stopping"
    if ready:
        return "running"
    if stop is not None:
        return "culled" if stop[1] else "stopped"
    return "not started"


def usage_fields(usage: LearnerUsage | None) -> dict[str, Any]:
    if usage is None:
        return {"cpu": None, "memory": None, "gpu": None, "work_bytes": None}
    gpu = None
    if usage.gpu_devices or usage.gpu_memory_mb:
        gpu = {"devices": list(usage.gpu_devices), "memory_mb": usage.gpu_memory_mb}
    return {
        "cpu": {"used": usage.cpu_used, "limit": usage.cpu_limit},
        "memory": {"used": usage.memory_used, "limit": usage.memory_limit},
        "gpu": gpu,
        "work_bytes": usage.work_bytes,
    }


def host_fields(host: HostUsage | None) -> dict[str, Any] | None:
    if host is None:
        return None
    return {
        "cpus": host.cpus,
        "cpu_used": host.cpu_used,
        "memory_total": host.memory_total,
        "memory_available": host.memory_available,
        "disk_total": host.disk_total,
        "disk_free": host.disk_free,
    }


def totals(learners: list[dict[str, Any]], capacity: int, starting: int, free_seats: int) -> dict[str, Any]:
    counts = {state: 0 for state in STATES}
    for learner in learners:
        counts[learner["state"]] += 1
    return {
        "people": len(learners),
        **{state.replace(" ", "_"): count for state, count in counts.items()},
        "start_capacity": capacity,
        "free_start_places": max(0, capacity - starting),
        "free_seats": free_seats,
    }


def server_usage(metrics: Any) -> LearnerUsage | None:
    """What a learner's server says it uses (jupyter-resource-usage's /api/metrics/v1). Its disk
    figure is the use of the file system holding ~/work (the learner image asks for it)."""
    if not isinstance(metrics, dict) or "rss" not in metrics:
        return None
    limits = metrics.get("limits") or {}
    cpu = metrics.get("cpu_percent")
    disk = metrics.get("disk_used")
    return LearnerUsage(
        cpu_used=cpu / 100 if isinstance(cpu, int | float) else None,
        cpu_limit=(limits.get("cpu") or {}).get("cpu") or None,
        memory_used=int(metrics["rss"]),
        memory_limit=(limits.get("memory") or {}).get("rss") or None,
        work_bytes=int(disk) if isinstance(disk, int | float) else None,
    )


def merged(
    engine: LearnerUsage | None, server: LearnerUsage | None
) -> tuple[LearnerUsage | None, str | None]:
    """The engine's figures where it has them, else the server's own; and which measured CPU and
    memory. The work folder's size is the engine's, else the server's (asked only where ~/work is
    a file system of its own: Room.work_folder_from_server)."""
    if engine is not None and engine.cpu_used is not None:
        if engine.work_bytes is None and server is not None and server.work_bytes is not None:
            return replace(engine, work_bytes=server.work_bytes), "engine"
        return engine, "engine"
    if server is None:
        return engine, None
    if engine is None:
        return server, "server"
    return (
        LearnerUsage(
            cpu_used=server.cpu_used,
            cpu_limit=engine.cpu_limit or server.cpu_limit,
            memory_used=engine.memory_used if engine.memory_used is not None else server.memory_used,
            memory_limit=engine.memory_limit or server.memory_limit,
            gpu_devices=engine.gpu_devices,
            gpu_memory_mb=engine.gpu_memory_mb,
            work_bytes=engine.work_bytes if engine.work_bytes is not None else server.work_bytes,
        ),
        "server",
    )


def memory_facts(answer: Any) -> dict[str, Any]:
    """What a learner's server says of its memory cgroup (dlworkshop_learner/memory.py): its kernels
    killed for memory so far, its peak, and the notebooks its kernels run; None where it does not
    say (no server, or an image without the extension)."""
    if not isinstance(answer, dict):
        return {"memory_kills": None, "memory_peak": None, "notebooks": None}
    kills, peak = answer.get("oom_kills"), answer.get("peak")
    notebooks = answer.get("notebooks")
    return {
        "memory_kills": kills if isinstance(kills, int) else None,
        "memory_peak": peak if isinstance(peak, int) else None,
        "notebooks": [
            {"path": str(n.get("path")), "state": n.get("state")} for n in notebooks if isinstance(n, dict)
        ]
        if isinstance(notebooks, list)
        else None,
    }


def kernel_counts(answer: Any) -> dict[str, int] | None:
    """Busy and idle kernels from a Jupyter server's /api/kernels."""
    if not isinstance(answer, list):
        return None
    busy = sum(1 for kernel in answer if kernel.get("execution_state") == "busy")
    return {"busy": busy, "idle": len(answer) - busy}
