"""Every CPU-second of one learner's arrival, phase by phase, on a running hub: what the surge
benchmark (benchmarks/surge.py --profile) records for both hubs, one learner at a time on a quiet
machine, several samples each.

Phases, each in CPU seconds and wall seconds:

- login and claim check: the login form, the hub's check of the code and the name's secret, the token;
- hub spawn work and proxy: the hub's CPU while the server starts (its spawner, the proxy's route,
  its polls of the server);
- container create and work-folder mount: the Docker engine's (dockerd, containerd, the shims,
  runc), from the spawn request until the container runs;
- server start by import: the learner container's, until its server answers through the hub;
- kernel start: the notebook session (POST /api/sessions), the kernel's imports, the proxy;
- first cell: the first cell over the kernel's websocket;
- kernel started ahead: the learner container's CPU over `settle` seconds after the first cell
  (a kernel ahead started beside the learner's would show here).

CPU is read from the hub's and the learner's cgroups and the Docker engine's processes (/proc);
the host's busy CPU over the whole arrival is recorded beside it (it also counts this benchmark's
own client). Not a test.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import docker
from docker.models.containers import Container

from dlworkshop.capacity import cpu_times
from dlworkshop.cgroup_cpu import container_cpu_seconds
from dlworkshop.clients import loadtest
from dlworkshop.clients.smoke.jupyter import JupyterServer, run_cells
from dlworkshop.hubclient import HubSession

PHASES = (
    "login and claim check",
    "hub spawn work and proxy",
    "container create and work-folder mount",
    "server start by import",
    "kernel start",
    "first cell",
    "kernel started ahead",
)
# The Docker engine's processes: what creating a container and mounting its volumes costs.
ENGINE_PROCESSES = (
    "dockerd",
    "containerd",
    "containerd-shim",
    "containerd-shim-runc-v2",
    "runc",
    "docker-proxy",
)


def engine_cpu(proc: Path = Path("/proc")) -> dict[int, float]:
    """CPU seconds (user + system, with waited-for children) of each Docker engine process, by pid."""
    tick = os.sysconf("SC_CLK_TCK")
    found = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() not in ENGINE_PROCESSES:
                continue
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[int(entry.name)] = sum(int(value) for value in fields[11:15]) / tick
    return found


def engine_delta(before: dict[int, float], after: dict[int, float]) -> float:
    """The engine's CPU between two readings: processes that started since count from nothing."""
    return sum(
        seconds - before.get(pid, 0.0) for pid, seconds in after.items() if seconds >= before.get(pid, 0.0)
    )


def docker_time(stamp: str) -> float:
    """A Docker timestamp (RFC 3339, nanoseconds) as time.time() seconds."""
    head, _, fraction = stamp.rstrip("Z").partition(".")
    return datetime.fromisoformat(head + "+00:00").timestamp() + float(f"0.{fraction or 0}")


class Meters:
    """The CPU counters an arrival is read from: the hub's container, the engine, the learner's container."""

    def __init__(
        self, client: docker.DockerClient, hub_container: str, container_of: Callable[[str], str]
    ) -> None:
        self.client, self.hub_container, self.container_of = client, hub_container, container_of
        self.user: str | None = None  # whose learner container, once logged in
        self.learner: Container | None = None

    def read(self) -> dict[str, Any]:
        if self.learner is None and self.user is not None:
            with contextlib.suppress(docker.errors.NotFound):
                self.learner = self.client.containers.get(self.container_of(self.user))
        learner = container_cpu_seconds(self.learner.id or "") if self.learner else None
        busy, _ = cpu_times() or (0, 0)
        return {
            "at": time.monotonic(),
            "hub": container_cpu_seconds(self.hub_container) or 0.0,
            "engine": engine_cpu(),
            "learner": learner or 0.0,
            "host": busy / os.sysconf("SC_CLK_TCK"),
        }


def phases_of(
    readings: list[dict[str, Any]], container_walls: tuple[float, float]
) -> dict[str, dict[str, float]]:
    """The phases from the readings taken at each step's end (before login, after login, spawn,
    session, first cell, settle) and the container's own walls (created until running, running
    until its server answered)."""
    start, login, spawn, session, cell, settle = readings

    def delta(key: str, a: dict[str, Any], b: dict[str, Any]) -> float:
        return float(b[key] - a[key])

    def everything(a: dict[str, Any], b: dict[str, Any]) -> float:
        return delta("hub", a, b) + engine_delta(a["engine"], b["engine"]) + delta("learner", a, b)

    create_wall, server_wall = container_walls
    spawn_wall = delta("at", login, spawn)
    return {
        "login and claim check": {"cpu_s": everything(start, login), "wall_s": delta("at", start, login)},
        "hub spawn work and proxy": {
            "cpu_s": delta("hub", login, spawn),
            "wall_s": max(0.0, spawn_wall - create_wall - server_wall),
        },
        "container create and work-folder mount": {
            "cpu_s": engine_delta(login["engine"], spawn["engine"]),
            "wall_s": create_wall,
        },
        "server start by import": {"cpu_s": delta("learner", login, spawn), "wall_s": server_wall},
        "kernel start": {"cpu_s": everything(spawn, session), "wall_s": delta("at", spawn, session)},
        "first cell": {"cpu_s": everything(session, cell), "wall_s": delta("at", session, cell)},
        "kernel started ahead": {
            "cpu_s": delta("learner", cell, settle),
            "wall_s": delta("at", cell, settle),
        },
        "all in (the host, this client included)": {
            "cpu_s": delta("host", start, cell),
            "wall_s": delta("at", start, cell),
        },
    }


async def one_arrival(
    url: str, login: loadtest.Credentials, meters: Meters, settle: float, timeout: float = 300
) -> dict[str, dict[str, float]]:
    """One learner's arrival, read phase by phase; their server is stopped after."""
    readings = [meters.read()]
    async with HubSession(url, timeout=60) as hub:
        name, token = await loadtest.log_in(hub, login)  # the load test's own login
        meters.user = name
        readings.append(meters.read())
        spawn_began = time.time()
        await hub.spawn(name, timeout)
        readings.append(meters.read())
        try:
            kernel = await hub.start_session(name, loadtest.NOTEBOOK)
            readings.append(meters.read())
            server = JupyterServer(f"{url}/user/{name}/", token)
            await run_cells(server, kernel, [loadtest.DEFAULT_CODE], cell_timeout=timeout)
            readings.append(meters.read())
            await asyncio.sleep(settle)
            readings.append(meters.read())
            walls = container_walls(meters.learner, spawn_began, readings[2]["at"] - readings[1]["at"])
        finally:
            await hub.stop(name, wait=120)
    return phases_of(readings, walls)


def container_walls(
    container: Container | None, spawn_began: float, spawn_wall: float
) -> tuple[float, float]:
    """(created until running, running until the spawn ended) from the engine's timestamps."""
    if container is None:
        return 0.0, 0.0
    container.reload()
    created = docker_time(container.attrs["Created"])
    running = docker_time(container.attrs["State"]["StartedAt"])
    answered = spawn_began + spawn_wall
    return max(0.0, running - created), max(0.0, answered - running)


def median_phases(samples: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, Any]]:
    """Each phase's median CPU and wall over the samples, and how many there were."""
    return {
        phase: {
            "cpu_s": round(statistics.median(sample[phase]["cpu_s"] for sample in samples), 3),
            "wall_s": round(statistics.median(sample[phase]["wall_s"] for sample in samples), 3),
            "samples": len(samples),
        }
        for phase in samples[0]
    }
