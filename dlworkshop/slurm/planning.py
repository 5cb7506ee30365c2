"""Planning a Slurm workshop on paper: how many learners the partition's nodes carry with the
configured job request, and the reservation that holds them for the workshop's hours.

Nodes are given by hand (slurm.nodes in workshop.yaml, or `check --node-*`): planning happens on
the instructor's machine, which need not reach the cluster.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from dlworkshop.settings import Settings, SlurmNode, format_bytes
from dlworkshop.slurm.jobs import account_names, job_request

RESERVATION_DEFAULT_NAME = "dlworkshop"


@dataclass(frozen=True)
class NodeCapacity:
    node: SlurmNode
    learners_each: int
    limited_by: str  # cpu | memory | gpu

    @property
    def learners(self) -> int:
        return self.learners_each * self.node.count


@dataclass(frozen=True)
class ClusterCapacity:
    concurrent: int
    nodes: list[NodeCapacity]
    carries: int
    problems: list[str]
    notes: list[str]


def _gpu_places(settings: Settings, gpus: int) -> int | None:
    # mig: the node's slices of the profile, counted as its gpus
    return settings.resources.gpu.places(gpus)


def node_capacity(settings: Settings, node: SlurmNode) -> NodeCapacity:
    request = job_request(settings)
    memory = settings.resources.memory
    memory_request = -(-memory // 2**20) * 2**20  # --mem rounds up to whole MiB
    limits = {"cpu": node.cpus // request.cpus_per_task, "memory": node.memory // memory_request}
    places = _gpu_places(settings, node.gpus)
    if places is not None:
        limits["gpu"] = places
    limited_by = min(limits, key=lambda name: limits[name])
    return NodeCapacity(node, limits[limited_by], limited_by)


def cluster_capacity(settings: Settings, nodes: list[SlurmNode]) -> ClusterCapacity:
    request = job_request(settings)
    concurrent = settings.learners.concurrent
    rows = [node_capacity(settings, node) for node in nodes]
    carries = sum(row.learners for row in rows)
    notes = []
    if request.cpus_per_task != settings.resources.cpu:
        notes.append(
            f"resources.cpu {settings.resources.cpu:g} is rounded up to --cpus-per-task="
            f"{request.cpus_per_task} (Slurm gives whole CPUs; thread pools follow it)"
        )
    if settings.resources.gpu.policy != "none" and settings.image.variant == "cpu":
        notes.append(
            f"GPU policy {settings.resources.gpu.policy} gives each learner a GPU the cpu image cannot use; "
            "use image.variant cuda"
        )
    problems = []
    if nodes and carries < concurrent:
        who = (
            f"{concurrent} learners expected at once"
            if settings.learners.expected_concurrent
            else f"all {settings.learners.total} learners"
        )
        problems.append(
            f"slurm.nodes: {who} need {concurrent} jobs of {request.cpus_per_task} CPUs, "
            f"{format_bytes(settings.resources.memory)}{', ' + request.gres if request.gres else ''}; "
            f"the nodes carry {carries}; add nodes or lower the per-learner quota"
        )
    if not nodes:
        notes.append(
            "no slurm.nodes given: the room's fit is not checked (list the partition's nodes, or pass "
            "--node-count/--node-cpus/--node-memory/--node-gpus)"
        )
    return ClusterCapacity(concurrent, rows, carries, problems, notes)


def _slurm_time(moment: datetime) -> str:
    return moment.replace(tzinfo=None).isoformat(timespec="seconds")


def reservation_command(settings: Settings, nodes: list[SlurmNode]) -> str | None:
    """The `scontrol create reservation` line for the workshop's hours, its accounts and the nodes the
    room needs (None without workshop.start and end). The reservation opens when pre-warm begins."""
    workshop, slurm = settings.workshop, settings.slurm
    if workshop.start is None or workshop.end is None:
        return None
    opens = workshop.start - timedelta(minutes=settings.prewarm.minutes_before)
    parts = [
        "scontrol create reservation",
        f"ReservationName={slurm.reservation or RESERVATION_DEFAULT_NAME}",
        f"StartTime={_slurm_time(opens)}",
        f"EndTime={_slurm_time(workshop.end)}",
        f"Users={','.join(account_names(settings))}",
    ]
    if slurm.partition:
        parts.append(f"PartitionName={slurm.partition}")
    needed = _nodes_for_the_room(settings, nodes)
    if needed is not None:
        parts.append(f"NodeCnt={needed}")
    else:
        request = job_request(settings)
        parts.append(f"CoreCnt={settings.learners.concurrent * request.cpus_per_task}")
    return " ".join(parts)


def _nodes_for_the_room(settings: Settings, nodes: list[SlurmNode]) -> int | None:
    """Nodes, biggest first, until the learners expected at once fit (None: no nodes given)."""
    if not nodes:
        return None
    each = sorted(
        (node_capacity(settings, node).learners_each for node in nodes for _ in range(node.count)),
        reverse=True,
    )
    seated = 0
    for count, learners in enumerate(each, start=1):
        seated += learners
        if seated >= settings.learners.concurrent:
            return count
    return len(each)
