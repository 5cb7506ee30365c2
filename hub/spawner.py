"""The learner's container: DockerSpawner plus admission, GPU quotas, a disk guard and labels."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

from dockerspawner import DockerSpawner
from tornado import web
from tornado.httpclient import AsyncHTTPClient
from traitlets import Bool, Integer, Unicode

from hub.admission import AdmissionQueue
from hub.gpu import Allocation, GpuAllocator, GpuPoolExhausted

LABEL_USER = "org.dlworkshop.user"


class WorkshopSpawner(DockerSpawner):
    # One allocator for the hub process, shared by every learner's spawner.
    gpu_allocator: ClassVar[GpuAllocator | None] = None
    # One queue for the hub: starts admitted at the rate the host carries (hub/admission.py).
    admission: ClassVar[AdmissionQueue | None] = None

    admitted_start_timeout = Integer(
        600,
        config=True,
        help="Seconds a start may take once admitted, until the server answers. Time spent queued "
        "does not count (Spawner.start_timeout is set far above it).",
    )
    phase = Unicode("")  # queued | starting | answering, shown on the spawn page
    docker_api_threads = Integer(
        8,
        config=True,
        help="Docker API calls in flight at once, for all learners together. DockerSpawner's own "
        "executor has one thread, which queues a whole room's creates, starts and polls behind each other.",
    )
    _docker_api_pool: ClassVar[ThreadPoolExecutor | None] = None

    @property
    def executor(self) -> ThreadPoolExecutor:  # type: ignore[override]
        cls = WorkshopSpawner
        if cls._docker_api_pool is None:
            cls._docker_api_pool = ThreadPoolExecutor(
                self.docker_api_threads, thread_name_prefix="docker-api"
            )
        return cls._docker_api_pool

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

    @property
    def admission_key(self) -> str:
        return f"{self.user.name}/{self.name}"

    async def start(self):  # type: ignore[no-untyped-def]
        if self.disk_free_min and shutil.disk_usage(self.disk_path).free < self.disk_free_min:
            raise web.HTTPError(507, "The workshop machine is low on disk space. Please tell a helper.")
        queue = self.admission
        self.phase = "queued"
        queued_at = time.monotonic()
        try:
            async with queue.admitted(self.admission_key) if queue else contextlib.nullcontext():
                if queue is not None and time.monotonic() - queued_at > 1:
                    self.log.info(
                        "%s admitted after %.0f s in the queue", self._log_name, time.monotonic() - queued_at
                    )
                try:
                    return await asyncio.wait_for(self._start_until_answering(), self.admitted_start_timeout)
                except asyncio.TimeoutError:
                    raise TimeoutError(
                        f"the server did not answer within {self.admitted_start_timeout} s of its start"
                    ) from None
        finally:
            self.phase = ""

    async def _start_until_answering(self) -> Any:
        """Create the container, then hold the admission place until the server answers: its
        imports, not the container's creation, are where a start's CPU goes."""
        self.phase = "starting"
        allocation = self._gpu()
        labels = {LABEL_USER: self.user.name, **(allocation.labels if allocation else {})}
        self.extra_create_kwargs = {**self.extra_create_kwargs, "labels": labels}
        if allocation is not None and self.gpu_device_requests:
            self.extra_host_config = {**self.extra_host_config, "device_requests": allocation.device_requests}
        try:
            started = await super().start()
            self.phase = "answering"
            url = started if isinstance(started, str) else f"http://{started[0]}:{started[1]}"
            await self._until_answering(f"{url}{self.server.base_url}api")
            return started
        except BaseException:
            self._release_gpu()
            raise

    async def _until_answering(self, url: str) -> None:
        """Ask every 0.2 s (a backoff would add up to a second to every start, with the place
        held); look at the container every 2 s, so a server that died does not hold it."""
        client = AsyncHTTPClient()
        checked = time.monotonic()
        while True:
            with contextlib.suppress(Exception):
                answer = await client.fetch(url, raise_error=False, request_timeout=5, follow_redirects=False)
                if answer.code < 500:  # any answer: the server is up (599: no connection yet)
                    return
            if time.monotonic() - checked > 2:
                checked = time.monotonic()
                if await self.poll() is not None:
                    raise RuntimeError(
                        "the server exited while starting; `docker logs` of its container says why"
                    )
            await asyncio.sleep(0.2)

    async def progress(self) -> AsyncIterator[dict[str, Any]]:
        """The spawn page's messages: the learner's place in the queue, then the start's steps."""
        shown = None
        while True:
            event = self._progress_event()
            if event is not None and event != shown:
                shown = event
                yield event
            await asyncio.sleep(0.5)

    def _progress_event(self) -> dict[str, Any] | None:
        queue = self.admission
        place = queue.place(self.admission_key) if queue else None
        if self.phase == "queued" and place:
            starting = len(queue.starting)  # type: ignore[union-attr]
            return {
                "progress": 10,
                "message": f"The room is starting together: you are number {place} in the queue "
                f"({starting} {'server' if starting == 1 else 'servers'} starting now). "
                "Your place is kept; no need to reload.",
            }
        if self.phase == "starting":
            return {"progress": 40, "message": "Your turn: starting your server"}
        if self.phase == "answering":
            return {"progress": 70, "message": "Your server is up; waiting for JupyterLab to answer"}
        return None

    async def stop(self, now: bool = False) -> None:
        await super().stop(now=now)
        self._release_gpu()

    def _release_gpu(self) -> None:
        if self.gpu_allocator is not None:
            self.gpu_allocator.release(self.user.name)
