"""Per-learner GPU quotas on plain Docker (the Docker backend's; Slurm and Kubernetes allocate GPUs
themselves): pure logic, no GPU needed to test.

Policies: `none`; `whole` (k GPUs per learner); `shared` (n learners per GPU, each with a memory
cap); `mig` (each MIG device one learner). The allocator hands out device IDs that the spawner
passes to Docker as device requests, records them on the container as labels, and rebuilds its
state from those labels after a hub restart: the running containers are the source of truth.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from dlworkshop import contract
from dlworkshop.errors import WorkshopError
from dlworkshop.gpus import detect_gpus
from dlworkshop.settings import GPU


class GpuPoolExhausted(Exception):
    """No GPU share is free; the message is shown to the learner on the spawn page."""


@dataclass(frozen=True)
class Device:
    id: str
    memory_mb: int | None = None


@dataclass(frozen=True)
class Allocation:
    username: str
    device_ids: tuple[str, ...]
    memory_cap_mb: int | None = None

    @property
    def labels(self) -> dict[str, str]:
        labels = {contract.LABEL_GPU_DEVICES: ",".join(self.device_ids)}
        if self.memory_cap_mb:
            labels[contract.LABEL_GPU_MEMORY_CAP] = str(self.memory_cap_mb)
        return labels

    @property
    def environment(self) -> dict[str, str]:
        env = {"NVIDIA_VISIBLE_DEVICES": ",".join(self.device_ids)}
        if self.memory_cap_mb:
            env[contract.learner.GPU_MEMORY_ENV] = str(self.memory_cap_mb)
        return env

    @property
    def device_requests(self) -> list[dict[str, object]]:
        """docker-py DeviceRequest fields: these devices, by ID, with the GPU capability."""
        return [{"driver": "nvidia", "device_ids": list(self.device_ids), "capabilities": [["gpu"]]}]


def discover_devices() -> list[Device]:
    """Where devices: auto reached the hub unresolved (`up` and the deploy resolve it on the host)."""
    found = [Device(id=gpu.uuid, memory_mb=gpu.memory_mb) for gpu in detect_gpus()]
    if not found:
        raise WorkshopError(
            "resources.gpu asks for GPUs with devices: auto, but no GPU answers nvidia-smi here",
            fix="install the NVIDIA driver, or list the devices in resources.gpu.devices",
        )
    return found


def inventory(settings: GPU, discovered: list[Device] | None = None) -> list[Device]:
    """The devices the policy hands out: MIG UUIDs, the listed devices, or what nvidia-smi finds."""
    if settings.policy == "none":
        return []
    if settings.policy == "mig":
        return [Device(id=uuid, memory_mb=settings.memory_mb) for uuid in settings.mig_devices]
    if settings.devices != "auto":
        return [Device(id=str(device), memory_mb=settings.memory_mb) for device in settings.devices]
    return discovered if discovered is not None else discover_devices()


@dataclass
class GpuAllocator:
    gpu: GPU
    devices: list[Device]
    memory_cap_mb: int | None = None
    assignments: dict[str, Allocation] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: GPU, discovered: list[Device] | None = None) -> GpuAllocator:
        devices = inventory(settings, discovered)
        per_device_memory = min((d.memory_mb for d in devices if d.memory_mb), default=None)
        return cls(gpu=settings, devices=devices, memory_cap_mb=settings.learner_memory_mb(per_device_memory))

    # The policy's arithmetic is the GPU settings' own (dlworkshop/settings/gpu.py).
    @property
    def policy(self) -> str:
        return self.gpu.policy

    @property
    def gpus_per_learner(self) -> int:
        return self.gpu.gpus_per_learner

    @property
    def learners_per_gpu(self) -> int:
        return self.gpu.learners_per_gpu

    @property
    def enabled(self) -> bool:
        return self.policy != "none"

    @property
    def capacity(self) -> int:
        """How many learners can hold a GPU share at once."""
        return self.gpu.places(len(self.devices)) or 0

    def usage(self) -> dict[str, int]:
        used = {device.id: 0 for device in self.devices}
        for allocation in self.assignments.values():
            for device_id in allocation.device_ids:
                used[device_id] = used.get(device_id, 0) + 1
        return used

    def allocate(self, username: str) -> Allocation:
        """The learner's GPU share: the same one again if they hold one already."""
        if username in self.assignments:
            return self.assignments[username]
        usage = self.usage()
        free = [d.id for d in self.devices if usage[d.id] < self.learners_per_gpu]
        # The least used devices first, so shared learners spread over the GPUs.
        free.sort(key=lambda device_id: (usage[device_id], device_id))
        if len(free) < self.gpus_per_learner:
            raise GpuPoolExhausted(
                f"All {self.capacity} GPU places of this workshop are in use. Please wait a few minutes "
                "and try again, or ask a helper."
            )
        allocation = Allocation(username, tuple(sorted(free[: self.gpus_per_learner])), self.memory_cap_mb)
        self.assignments[username] = allocation
        return allocation

    def release(self, username: str) -> None:
        self.assignments.pop(username, None)

    def rebuild(self, running: Iterable[tuple[str, Mapping[str, str]]]) -> None:
        """Re-derive assignments from running containers' (username, labels), e.g. after a restart.
        A device no longer in the inventory, or a share beyond a device's capacity, is not re-granted."""
        self.assignments = {}
        known = {d.id for d in self.devices}
        for username, labels in running:
            device_ids = tuple(d for d in labels.get(contract.LABEL_GPU_DEVICES, "").split(",") if d)
            if not device_ids or not set(device_ids) <= known:
                continue
            usage = self.usage()
            if any(usage[d] >= self.learners_per_gpu for d in device_ids):
                continue
            cap = labels.get(contract.LABEL_GPU_MEMORY_CAP)
            self.assignments[username] = Allocation(username, device_ids, int(cap) if cap else None)
