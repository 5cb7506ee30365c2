"""The learner's container: DockerSpawner plus GPU quotas, a disk guard and workshop labels."""

from __future__ import annotations

import shutil
from typing import ClassVar

from dockerspawner import DockerSpawner
from tornado import web
from traitlets import Bool, Integer, Unicode

from hub.gpu import Allocation, GpuAllocator, GpuPoolExhausted

LABEL_USER = "org.dlworkshop.user"


class WorkshopSpawner(DockerSpawner):
    # One allocator for the hub process, shared by every learner's spawner.
    gpu_allocator: ClassVar[GpuAllocator | None] = None

    disk_free_min = Integer(0, config=True, help="Refuse a start when the host has less free disk (bytes).")
    gpu_device_requests = Bool(True, config=True, help="Pass GPUs as Docker device requests.")
    disk_path = Unicode("/srv/jupyterhub/data", config=True, help="A path on the host disk the learners use.")

    def _gpu(self) -> Allocation | None:
        allocator = self.gpu_allocator
        if allocator is None or not allocator.enabled:
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

    async def start(self):  # type: ignore[no-untyped-def]
        if self.disk_free_min and shutil.disk_usage(self.disk_path).free < self.disk_free_min:
            raise web.HTTPError(507, "The workshop machine is low on disk space. Please tell a helper.")
        allocation = self._gpu()
        labels = {LABEL_USER: self.user.name, **(allocation.labels if allocation else {})}
        self.extra_create_kwargs = {**self.extra_create_kwargs, "labels": labels}
        if allocation is not None and self.gpu_device_requests:
            self.extra_host_config = {**self.extra_host_config, "device_requests": allocation.device_requests}
        try:
            return await super().start()
        except Exception:
            self._release_gpu()
            raise

    async def stop(self, now: bool = False) -> None:
        await super().stop(now=now)
        self._release_gpu()

    def _release_gpu(self) -> None:
        if self.gpu_allocator is not None:
            self.gpu_allocator.release(self.user.name)
