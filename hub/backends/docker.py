"""Learners' servers as containers on this machine's Docker engine (DockerSpawner).

The hub runs in a container beside them, with the Docker socket. Each learner gets a locked-down
container (UID 1000, no capabilities, a process and memory limit, a read-only root with small
in-memory /tmp and home) on the hub's private network, a named volume for the work folder (on a
size-limited slot the host prepared, when resources.disk asks for a quota), the instructor's shared
folder and the site's extra mounts read-only, and a share of the GPUs handed out by `GpuAllocator`
as Docker device requests. What must survive a hub restart is on the containers' and volumes'
labels: who owns a container, which hub started it, which GPUs it holds, which slot a work folder is.

The only module of the hub that imports dockerspawner or docker.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import docker
from dockerspawner import DockerSpawner
from tornado import web
from traitlets import Bool, Dict, Integer, Unicode

from dlworkshop import contract
from dlworkshop.cgroup_cpu import container_cpu_seconds
from dlworkshop.settings import GPU, Settings
from hub.backends.base import Backend, HostUsage, LearnerServer, LearnerUsage, ServerState
from hub.backends.gpu_allocator import Allocation, GpuAllocator, GpuPoolExhausted
from hub.spawning import WorkshopSpawner

# Docker's own spelling of "no health check" (Config.Healthcheck.Test), overriding the image's.
NO_HEALTHCHECK = {"test": ["NONE"]}

_STATES: dict[str, ServerState] = {"created": "starting", "restarting": "starting", "running": "running"}


def learner_containers(client: docker.APIClient, hub_name: str) -> list[LearnerServer]:
    """This hub's learner containers, from their labels (the engine is the source of truth)."""
    found = client.containers(all=True, filters={"label": f"{contract.LABEL_HUB}={hub_name}"})
    return [
        LearnerServer(
            user=container["Labels"].get(contract.LABEL_USER, ""),
            engine_id=container["Id"],
            state=_STATES.get(container["State"], "stopped"),
            node=None,
            labels=container["Labels"],
        )
        for container in found
        if contract.LABEL_USER in container["Labels"]
    ]


def scratch_folders(size: int) -> dict[str, str]:
    """In-memory folders of a bounded size on the read-only root (what a learner writes there
    counts against their memory limit): /tmp, and the home folder around ~/work (Jupyter's
    runtime files, caches, the data links)."""
    return {
        "/tmp": f"rw,exec,nosuid,nodev,size={size},mode=1777",
        contract.learner.HOME: f"rw,exec,nosuid,nodev,size={size},mode=0755,uid={contract.learner.UID}",
    }


def learner_volumes(settings: Settings) -> dict[str, dict[str, str]]:
    """DockerSpawner's volumes: the learner's work folder, and the instructor's shared folder
    inside it. The shared folder's files are root's and read-only to everyone else (`dlworkshop
    share` writes them so): the learner, UID 1000 with no capabilities, gets `Permission denied`,
    which JupyterLab reports as such (a read-only mount's `Read-only file system` is an
    "unexpected error" there)."""
    hub = settings.hub.container_name
    volumes = {contract.work_volume_name(hub): {"bind": contract.learner.WORK_FOLDER, "mode": "rw"}}
    if settings.mounts_shared_folder:
        volumes[contract.shared_volume_name(hub)] = {"bind": contract.learner.SHARED_FOLDER, "mode": "rw"}
    return volumes


def read_only_mounts(settings: Settings) -> dict[str, str]:
    """DockerSpawner's read_only_volumes: the site's extra mounts (host folders)."""
    return {mount.source: mount.target for mount in settings.resources.extra_mounts}


class NoFreeWorkSlot(Exception):
    """Every size-limited work folder the host prepared is taken."""


# Claims are made one at a time in the hub process: two learners never get the same slot.
_claiming = threading.Lock()


def claim_work_volume(client: docker.APIClient, hub_name: str, user: str) -> str:
    """The learner's work volume: theirs if it exists, else one made on a free slot the host
    prepared (dlworkshop/docker_host/work_volumes.py): created under the learner's name on the slot's device,
    labelled with the slot, and the free slot's volume removed. Returns the volume's name."""
    name = contract.work_volume_name(hub_name, user)
    with _claiming:
        try:
            client.inspect_volume(name)
            return name
        except docker.errors.NotFound:
            pass
        listed = client.volumes(
            filters={"label": [f"{contract.LABEL_HUB}={hub_name}", contract.LABEL_WORK_SLOT]}
        )
        volumes = listed.get("Volumes") or []
        claimed = {
            v["Labels"][contract.LABEL_WORK_SLOT] for v in volumes if contract.LABEL_USER in v["Labels"]
        }
        free = sorted(
            (v for v in volumes if contract.LABEL_USER not in v["Labels"]),
            key=lambda v: v["Labels"][contract.LABEL_WORK_SLOT],
        )
        for offer in free:
            slot = offer["Labels"][contract.LABEL_WORK_SLOT]
            if slot not in claimed:
                client.create_volume(
                    name,
                    driver=offer["Driver"],
                    driver_opts=client.inspect_volume(offer["Name"])["Options"],
                    labels={
                        contract.LABEL_HUB: hub_name,
                        contract.LABEL_USER: user,
                        contract.LABEL_WORK_SLOT: slot,
                    },
                )
            # Claimed now, or by a claim interrupted before it removed the offer.
            client.remove_volume(offer["Name"])
            if slot not in claimed:
                return name
    raise NoFreeWorkSlot(name)


class WorkshopDockerSpawner(WorkshopSpawner, DockerSpawner):
    hub_name = Unicode(config=True, help="The hub container's name; learner containers carry it as a label.")
    gpu = Dict(config=True, help="resources.gpu of workshop.yaml: the policy and the devices to share.")
    gpu_device_requests = Bool(
        True, config=True, help="Pass GPUs as Docker device requests (off: bookkeeping only)."
    )
    disk_free_min = Integer(0, config=True, help="Refuse a start when the host has less free disk (bytes).")
    work_quota = Bool(
        False,
        config=True,
        help="Work folders live on size-limited slots the host prepared (resources.disk): a "
        "learner's first start claims one. Off: a plain volume Docker creates, with no limit.",
    )
    docker_api_threads = Integer(
        8,
        config=True,
        help="Docker API calls in flight at once, for all learners together. DockerSpawner's own "
        "executor has one thread, which queues a whole room's creates, starts and polls behind each other.",
    )

    if TYPE_CHECKING:  # DockerSpawner's traits, which it does not annotate
        extra_create_kwargs: dict[str, Any]
        extra_host_config: dict[str, Any]
        object_id: str

    # One of each for the hub process, built at first use.
    _docker_api_pool: ClassVar[ThreadPoolExecutor | None] = None
    _gpu_allocator: ClassVar[GpuAllocator | None] = None

    @property
    def executor(self) -> ThreadPoolExecutor:
        cls = WorkshopDockerSpawner
        if cls._docker_api_pool is None:
            cls._docker_api_pool = ThreadPoolExecutor(
                self.docker_api_threads, thread_name_prefix="docker-api"
            )
        return cls._docker_api_pool

    @property
    def gpu_allocator(self) -> GpuAllocator:
        """The hub's GPU shares, rebuilt from the running containers' labels when first used (so a
        restarted hub knows who holds what before it hands anything out)."""
        cls = WorkshopDockerSpawner
        if cls._gpu_allocator is None:
            allocator = GpuAllocator.from_settings(GPU.model_validate(self.gpu))
            if allocator.enabled:
                running = [s for s in learner_containers(self.client, self.hub_name) if s.state != "stopped"]
                allocator.rebuild((server.user, server.labels) for server in running)
                self.log.info(
                    "dlworkshop: GPU assignments %s",
                    sorted((a.username, a.device_ids) for a in allocator.assignments.values()),
                )
            cls._gpu_allocator = allocator
        return cls._gpu_allocator

    def _gpu(self) -> Allocation | None:
        allocator = self.gpu_allocator
        if not allocator.enabled:
            return None
        try:
            return allocator.allocate(self.user.name)
        except GpuPoolExhausted as exc:
            raise web.HTTPError(503, str(exc)) from None

    def get_env(self) -> dict[str, str]:
        env = super().get_env()
        allocation = self._gpu()
        if allocation is not None:
            env.update(allocation.environment)
        return env

    async def start(self) -> Any:
        if self.disk_free_min and shutil.disk_usage(str(contract.HUB_DATA)).free < self.disk_free_min:
            raise web.HTTPError(507, "The workshop machine is low on disk space. Please tell a helper.")
        return await super().start()

    async def _claim_work_volume(self) -> None:
        try:
            name = await self.docker_api(claim_work_volume, self.hub_name, self.user.name)
        except NoFreeWorkSlot:
            self.log.error("dlworkshop: no free work-folder slot left for %s", self.user.name)
            raise web.HTTPError(
                507,
                "Every work folder prepared for this workshop is taken. Please tell a helper: "
                "`dlworkshop up` (or the deploy) prepares more when learners.count is raised.",
            ) from None
        self.log.info("dlworkshop: %s works in the size-limited volume %s", self.user.name, name)

    async def docker_api(self, call: Any, *args: Any) -> Any:
        """A blocking Docker SDK call with the hub's API client, in the Docker API threads."""
        return await asyncio.wrap_future(self.executor.submit(call, self.client, *args))

    async def start_engine(self) -> Any:
        if self.work_quota:
            await self._claim_work_volume()
        allocation = self._gpu()
        labels = {
            contract.LABEL_HUB: self.hub_name,
            contract.LABEL_USER: self.user.name,
            **(allocation.labels if allocation else {}),
        }
        self.extra_create_kwargs = {**self.extra_create_kwargs, "labels": labels}
        if allocation is not None and self.gpu_device_requests:
            self.extra_host_config = {**self.extra_host_config, "device_requests": allocation.device_requests}
        try:
            return await super().start_engine()
        except docker.errors.APIError as exc:
            self._release_gpu()
            if str(contract.HOST_WORK_DEVICES) in str(exc):
                # The links to the slots' loop devices are under /dev: gone after a reboot until
                # the host attaches the images again.
                self.log.error("dlworkshop: %s's work folder is not attached: %s", self.user.name, exc)
                raise web.HTTPError(
                    503,
                    "The workshop machine restarted and the work folders are not ready yet. Please "
                    "tell a helper: `dlworkshop up` (or the deploy's boot unit) attaches them again.",
                ) from None
            raise
        except BaseException:
            self._release_gpu()
            raise

    def server_instance(self) -> str | None:
        return self.container_id or None

    async def server_cpu_seconds(self) -> float | None:
        """The container's CPU so far (every process in it): the kernel's count in the host's
        cgroup files where the hub container has them, else as the engine's stats say."""
        seconds = container_cpu_seconds(self.container_id, Path(contract.HUB_HOST_CGROUP))
        if seconds:
            return seconds
        stats = await self.docker("stats", self.container_id, stream=False, one_shot=True)
        total = ((stats or {}).get("cpu_stats") or {}).get("cpu_usage", {}).get("total_usage")
        return total / 1e9 if total else None

    async def get_url(self) -> str:
        """Where the container's server listens, from the engine: after a hub restart during its
        start, JupyterHub's database holds only a placeholder address (hub/spawning.py adopts it)."""
        try:
            ip, port = await self.get_ip_and_port()
        except Exception:
            return await super().get_url()
        return f"{self.server.proto}://{ip}:{port}{self.server.base_url}"

    async def stop(self, now: bool = False) -> None:
        """`now`: removed at once, without the container's grace period (a start a hub restart
        interrupted, whose server never served its learner)."""
        try:
            if now and self.object_id:
                await self.docker("remove_container", self.object_id, force=True)
            await super().stop(now=now)
        except (docker.errors.NotFound, docker.errors.NullResource):
            # Already gone (removed by hand, or by an earlier stop): nothing is left to stop.
            self.object_id = ""
            self.clear_state()
        finally:
            self._release_gpu()

    def _release_gpu(self) -> None:
        if self._gpu_allocator is not None:
            self._gpu_allocator.release(self.user.name)


class DockerBackend(Backend):
    name = "docker"

    @property
    def spawner_class(self) -> type[WorkshopSpawner]:
        return WorkshopDockerSpawner

    def configure_engine(self, c: Any) -> None:
        settings, hub, resources = self.settings, self.settings.hub, self.settings.resources
        # The hub runs in a container; learners reach its API by the container's name.
        c.JupyterHub.bind_url = f"http://0.0.0.0:{contract.HUB_PORT}"
        c.JupyterHub.hub_ip = "0.0.0.0"
        c.JupyterHub.hub_port = contract.HUB_API_PORT
        c.JupyterHub.hub_connect_ip = hub.container_name
        c.DockerSpawner.image = settings.image.reference
        c.DockerSpawner.pull_policy = "ifnotpresent" if settings.image.source == "pull" else "never"
        c.DockerSpawner.network_name = hub.network
        c.DockerSpawner.use_internal_ip = True
        c.DockerSpawner.remove = True
        c.DockerSpawner.name_template = contract.learner_container_name(hub.container_name)
        c.DockerSpawner.volumes = learner_volumes(settings)
        c.DockerSpawner.read_only_volumes = read_only_mounts(settings)
        c.DockerSpawner.environment = dict(resources.extra_env)
        # Locked down: the learner's UID, no capabilities, no privilege escalation, a process limit,
        # no swap beyond the memory limit (so the limit is the limit), and a read-only root: what a
        # learner writes goes to the size-limited work folder or to small in-memory scratch folders.
        # No Docker HEALTHCHECK: the spawner polls the server itself, and the image's check would
        # run a process in every idle learner's container, CPU a rush needs (issue: the 09:00 rush).
        c.DockerSpawner.extra_create_kwargs = {
            "user": str(contract.learner.UID),
            "healthcheck": NO_HEALTHCHECK,
        }
        c.DockerSpawner.extra_host_config = {
            # Removed by the hub when it stops them (DockerSpawner.remove), not by Docker on exit:
            # an engine restart with live-restore removes running auto-remove containers on
            # Docker before 24.0.8 (moby/moby#46308), and learners' servers must outlive it.
            "auto_remove": False,
            "pids_limit": resources.pids,
            "security_opt": ["no-new-privileges"],
            "cap_drop": ["ALL"],
            "memswap_limit": resources.memory,
            "read_only": True,
            "tmpfs": scratch_folders(resources.tmp_size),
            # What the learner prints to the container's stdout (/proc/1/fd/1 included) is kept
            # on the host's disk by the engine: capped here, whatever the engine's defaults.
            "log_config": contract.docker_log_config(resources.log_max),
        }
        c.WorkshopDockerSpawner.hub_name = hub.container_name
        c.WorkshopDockerSpawner.gpu = resources.gpu.model_dump(mode="json")
        c.WorkshopDockerSpawner.gpu_device_requests = resources.gpu.docker_device_requests
        c.WorkshopDockerSpawner.disk_free_min = resources.disk_free_min
        c.WorkshopDockerSpawner.work_quota = resources.disk is not None
        if Path(contract.HUB_TLS_CERT).is_file():
            # `dlworkshop up` on a public address: the hub's own proxy serves TLS.
            c.JupyterHub.bind_url = f"https://0.0.0.0:{contract.HUB_PORT}"
            c.JupyterHub.ssl_cert = str(contract.HUB_TLS_CERT)
            c.JupyterHub.ssl_key = str(contract.HUB_TLS_KEY)

    def learner_servers(self) -> list[LearnerServer]:
        client = docker.from_env()
        try:
            return learner_containers(client.api, self.settings.hub.container_name)
        finally:
            client.close()

    # ---- The room view (hub/room.py): measured by the engine, through the hub's Docker socket ----

    def learner_usage(self, servers: list[LearnerServer]) -> dict[str, LearnerUsage]:
        from hub.backends import docker_usage

        client = docker.from_env()
        try:
            resources = self.settings.resources
            return docker_usage.learner_usage(
                client.api, self.settings.hub.container_name, servers, resources.cpu, resources.memory
            )
        finally:
            client.close()

    def host_usage(self) -> HostUsage | None:
        from hub.backends import docker_usage

        return docker_usage.host_usage()
