"""Capacity: do the learners' quotas fit the machine, and how many can it carry at once?

Memory is what decides in practice (a learner over its limit is killed) and GPU places are hard:
overcommitting either is a problem. CPU quotas are limits shared by time (a busy learner slows the
others, nobody is refused), so overcommitted CPUs are a warning. Demand is counted for the learners
expected at once: all of them, unless workshop.yaml says `learners.expected_concurrent`, plus the
hot spares (`prewarm.spares`) kept ready for late arrivals: a spare holds memory and a GPU place
like a learner.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from dlworkshop.settings import Settings, format_bytes
from dlworkshop_learner.host_cpu import cpu_times

__all__ = ["cpu_times"]  # the host's busy CPU, read where the learner's server reads it too

# The hub, its proxy and the culler, measured with a margin.
HUB_OVERHEAD_BYTES = 1024**3
# What a learner server's start costs before the hub has measured one on this host (the hub then
# follows its own measurements, hub/admission.py): CPU seconds until the server answers (Python
# imports, one core at most: benchmarks/start_profile.py), and seconds it waits on something else
# than a core (Docker creating the container, the disk, the hub's polls).
START_CPU_SECONDS = 1.2
START_WAIT_SECONDS = 1.0
# Memory a start needs while it imports.
START_MEMORY_BYTES = 512 * 2**20


def host_start_capacity(
    cpus: float,
    available_memory: int,
    busy_cores: float = 0.0,
    cpu_seconds: float = START_CPU_SECONDS,
    wait_seconds: float = START_WAIT_SECONDS,
    after_seconds: float = 0.0,
) -> int:
    """How many learner server starts the host carries at once (the hub's admission queue).

    Enough starts to keep the free cores busy while each also waits on Docker and the disk, and no
    more (more only slows every start down): free cores x (CPU + wait) / CPU seconds of a learner,
    within the memory free for their imports. A learner's CPU is the start's and `after_seconds`,
    what their server uses right after it answers (their first kernel and cell), which competes with
    the starts still admitted: at full speed the cores finish free cores / (start + after) learners
    a second, and each start holds its place (CPU + wait) seconds (Little's law). `busy_cores` is
    what runs besides the starts (the hub itself, running learners). Counted as free: at least half
    the cores, as the kernel shares a busy host's CPU time by process: fewer starts than that would
    only cede their share.
    """
    free_cores = max(cpus / 2, cpus - busy_cores)
    learner = max(cpu_seconds + after_seconds, 0.05)
    by_cpu = math.ceil(free_cores * (cpu_seconds + wait_seconds) / learner - 1e-9)
    return max(1, min(by_cpu, available_memory // START_MEMORY_BYTES))


def start_capacity(settings: Settings, cpus: float, available_memory: int) -> int:
    """hub.start_capacity from workshop.yaml, or the host's when it says auto."""
    configured = settings.hub.start_capacity
    return configured if isinstance(configured, int) else host_start_capacity(cpus, available_memory)


def available_memory() -> int:
    """Memory free for new processes now (MemAvailable), or all of it where /proc says nothing."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


@dataclass(frozen=True)
class HostFacts:
    cpus: float
    memory: int
    gpus: int

    @classmethod
    def detect(cls) -> HostFacts:
        from dlworkshop.gpus import detect_gpus

        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        return cls(cpus=float(os.cpu_count() or 1), memory=memory, gpus=len(detect_gpus()))


@dataclass(frozen=True)
class Demand:
    resource: str
    needed: float
    available: float
    shown_needed: str
    shown_available: str

    @property
    def fits(self) -> bool:
        return self.needed <= self.available + 1e-9

    @property
    def shared_by_time(self) -> bool:
        """CPU quotas are limits the kernel shares by time: overcommitting them slows, never refuses."""
        return self.resource == "cpu"


@dataclass(frozen=True)
class CapacityReport:
    concurrent: int  # learners at once
    demands: list[Demand]
    carries: int
    problems: list[str]
    warnings: list[str]
    start_capacity: int
    spares: int = 0  # ready servers kept beside them (prewarm.spares)

    @property
    def servers(self) -> str:
        """Who the demands are for, as the capacity table's header says it."""
        spares = f" + {self.spares} spares" if self.spares else ""
        return f"{self.concurrent} learners at once{spares}"


def gpu_places(settings: Settings, host: HostFacts) -> int | None:
    gpu = settings.resources.gpu
    if gpu.policy == "none":
        return None
    if gpu.policy == "mig":
        return gpu.places(len(gpu.mig_devices))
    return gpu.places(host.gpus if gpu.devices == "auto" else len(gpu.devices))


def check_capacity(settings: Settings, host: HostFacts) -> CapacityReport:
    resources, learners = settings.resources, settings.learners
    spares = settings.prewarm.spares
    concurrent = learners.concurrent
    servers = concurrent + spares
    learner_memory = host.memory - HUB_OVERHEAD_BYTES
    demands = [
        Demand(
            "cpu",
            servers * resources.cpu,
            host.cpus,
            f"{servers * resources.cpu:g} CPUs",
            f"{host.cpus:g} CPUs",
        ),
        Demand(
            "memory",
            servers * resources.memory + HUB_OVERHEAD_BYTES,
            host.memory,
            f"{format_bytes(servers * resources.memory)} + {format_bytes(HUB_OVERHEAD_BYTES)} hub",
            format_bytes(host.memory) if host.memory % 1024**2 == 0 else f"{host.memory / 1024**3:.1f}G",
        ),
    ]
    # What the host carries at once: memory and GPU places (CPU time is shared, see shared_by_time).
    carries = [max(0, int(learner_memory // resources.memory))]
    places = gpu_places(settings, host)
    if places is not None:
        demands.append(Demand("gpu", servers, places, f"{servers} GPU places", f"{places} GPU places"))
        carries.append(places)
    # Spares hold their places whoever comes: what is left carries the learners.
    carry = max(0, min(carries) - spares)
    who = (
        f"{concurrent} learners expected at once"
        if learners.expected_concurrent
        else f"all {learners.total} learners"
    )
    if spares:
        who += f" and {spares} spares (prewarm.spares)"
    problems, warnings = [], []
    for demand in demands:
        if demand.fits:
            continue
        if demand.shared_by_time:
            warnings.append(
                f"resources.cpu: {who} may use {demand.shown_needed}, the host has {demand.shown_available}; "
                "CPU quotas are limits shared by time, so busy learners slow each other down "
                f"(about {demand.needed / demand.available:.1f}x when all train at once)"
            )
            continue
        fix = (
            "lower the per-learner quota or use a bigger machine"
            if learners.expected_concurrent
            else "lower the per-learner quota, use a bigger machine, or set learners.expected_concurrent"
        )
        if spares:
            fix = f"lower prewarm.spares, or {fix}"
        problems.append(
            f"resources.{demand.resource}: {who} need {demand.shown_needed}, "
            f"the host has {demand.shown_available}; {fix}"
        )
    if carry < learners.total:
        warnings.append(
            f"this host carries {carry} learners at once with these quotas; "
            f"{learners.total - carry} of {learners.total} would have to wait if all came together"
        )
    starts = start_capacity(settings, host.cpus, host.memory - HUB_OVERHEAD_BYTES)
    if concurrent > starts and settings.workshop.start is None:
        warnings.append(
            f"{concurrent} learners arriving together start {starts} at a time (the rest queue); set "
            f"workshop.start so the hub pre-warms their servers {settings.prewarm.minutes_before} minutes "
            "ahead, or run `dlworkshop prewarm` before they arrive"
        )
    return CapacityReport(concurrent, demands, carry, problems, warnings, starts, spares)
