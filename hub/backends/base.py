"""The one interface between the hub and the engine that runs learners' servers.

A backend knows its engine and nothing else: admission, pre-warm, culling, logins and the smoke
test work through JupyterHub's own API and `hub.spawning.WorkshopSpawner`, never through an
engine's client. Each engine (Docker today; Slurm and Kubernetes next) is one module beside this
one that subclasses `Backend` and mixes `WorkshopSpawner` into the engine's spawner class.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from dlworkshop import contract
from dlworkshop.settings import Settings
from hub.spawning import QUEUED_START_TIMEOUT, WorkshopSpawner
from hub.state import HubState

ServerState = Literal["starting", "running", "stopped"]


@dataclass(frozen=True)
class LearnerServer:
    """A learner's server as the engine sees it now (which may differ from the hub's database,
    e.g. after a hub restart): what state rebuilding, adoption and the room view read."""

    user: str
    engine_id: str  # container ID, job ID, pod name
    state: ServerState
    node: str | None = None  # where it runs, where the engine has several
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LearnerUsage:
    """What a learner's server uses now against its quota, as far as the engine can say (None:
    the engine does not say). For the room view (hub/room.py, `dlworkshop status`)."""

    cpu_used: float | None = None  # cores, averaged over a short sample
    cpu_limit: float | None = None  # cores
    memory_used: int | None = None  # bytes, page cache left out (as `docker stats` counts)
    memory_limit: int | None = None  # bytes
    gpu_devices: tuple[str, ...] = ()  # what the learner holds (IDs or UUIDs); () none or unknown
    gpu_memory_mb: int | None = None  # the learner's GPU memory cap
    work_bytes: int | None = None  # size of the learner's work folder


@dataclass(frozen=True)
class HostUsage:
    """The machine that runs the learners' servers, where the hub can see it (one Docker host)."""

    cpus: int
    cpu_used: float | None  # cores busy, averaged over a short sample
    memory_total: int
    memory_available: int
    disk_total: int  # the disk learners' work folders and containers live on
    disk_free: int


class Backend(ABC):
    """One engine. Implement `spawner_class`, `configure_engine` and `learner_servers`; where a
    platform runs the hub itself, also `platform_runs_hub` and `hub_state`; where the engine
    measures what servers use, `learner_usage` (and `host_usage` where one machine runs them all)."""

    name: ClassVar[str]
    # True where a platform runs the hub (Z2JH's chart): it sets the hub's database, cookie secret,
    # proxy token and addresses, and makes its services' API tokens, before hub.configure runs,
    # which then leaves those alone. False: the hub keeps them on its own volume (HubState) and
    # the backend sets the addresses.
    platform_runs_hub: ClassVar[bool] = False
    # What hub.start_capacity auto means on this engine: 0 is "from the hub host's cores and
    # memory", right where learners' servers start on the hub's own machine.
    auto_start_capacity: ClassVar[int] = 0

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def hub_state(self, c: Any) -> HubState:
        """What the hub keeps across restarts (secrets, seats), read before any key is set: from the
        hub's volume, created there the first time; a platform-run hub reads what the platform
        holds from `c`, which the platform has configured by then."""
        return HubState.load()

    @property
    @abstractmethod
    def spawner_class(self) -> type[WorkshopSpawner]:
        """The engine's spawner with WorkshopSpawner mixed in front of it."""

    @abstractmethod
    def configure_engine(self, c: Any) -> None:
        """Set the engine's own keys on JupyterHub's config: where the hub is reached from the
        learners' servers, image, storage of the work folder, isolation, GPUs."""

    @abstractmethod
    def learner_servers(self) -> list[LearnerServer]:
        """Every learner server this hub's engine runs (or is starting) now."""

    def learner_usage(self, servers: list[LearnerServer]) -> dict[str, LearnerUsage]:
        """What each of these servers uses (by learner), for the room view; called in a thread.
        An engine that measures nothing still says the quotas; engines override to measure."""
        resources = self.settings.resources
        quotas = LearnerUsage(cpu_limit=resources.cpu, memory_limit=resources.memory)
        return {server.user: quotas for server in servers if server.state != "stopped"}

    def host_usage(self) -> HostUsage | None:
        """The figures of the one machine that runs every learner, where there is one and the hub
        sees it (None: a cluster, whose nodes the hub does not see); called in a thread."""
        return None

    def configure(self, c: Any) -> None:
        """Everything the backend sets: what every engine shares, then the engine's own keys."""
        settings, resources = self.settings, self.settings.resources
        c.JupyterHub.spawner_class = self.spawner_class
        # JupyterHub's own quota traits: every engine maps them to its limits (and sets CPU_LIMIT,
        # MEM_LIMIT in the server's environment, which the learner's start hook reads).
        c.Spawner.cpu_limit = resources.cpu
        c.Spawner.mem_limit = resources.memory
        c.Spawner.default_url = "/lab"
        c.Spawner.notebook_dir = contract.learner.WORK_FOLDER
        # Time in the admission queue never fails a learner: the admitted start is bounded instead.
        c.Spawner.start_timeout = QUEUED_START_TIMEOUT
        c.Spawner.http_timeout = settings.hub.start_timeout
        c.WorkshopSpawner.admitted_start_timeout = settings.hub.start_timeout
        capacity = settings.hub.start_capacity
        c.WorkshopSpawner.start_capacity = capacity if isinstance(capacity, int) else self.auto_start_capacity
        # The admission queue, not a refusal, handles a room arriving at once.
        c.JupyterHub.concurrent_spawn_limit = 0
        self.configure_engine(c)
