"""What every learner's server start goes through, whatever engine runs it.

`WorkshopSpawner` is mixed in front of an engine's spawner (DockerSpawner, batchspawner's
SlurmSpawner, KubeSpawner): the start waits its turn in the hub's admission queue, the engine starts
the server, and the admission place is held until the server answers, since its imports are where
a start's CPU goes. The spawn page shows the learner's place in the queue, then the start's steps.
Backends (hub/backends/) override only `start_engine` and, where the engine says more,
`engine_message`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, ClassVar

from tornado.httpclient import AsyncHTTPClient
from traitlets import Integer, Unicode
from traitlets.config import LoggingConfigurable

from dlworkshop.capacity import available_memory, host_start_capacity
from dlworkshop.contract import QUEUED_START_TIMEOUT
from hub.admission import AdmissionQueue

__all__ = ["QUEUED_START_TIMEOUT", "WorkshopSpawner"]


class WorkshopSpawner(LoggingConfigurable):
    """Admission, the spawn page's messages and the wait until the server answers. Mixed in front
    of a jupyterhub.spawner.Spawner subclass (a Spawner itself would have to be a whole engine)."""

    if TYPE_CHECKING:  # provided by the Spawner it is mixed into
        user: Any
        name: str
        server: Any
        _log_name: str

        async def poll(self) -> int | None: ...

    start_capacity = Integer(
        0,
        config=True,
        help="Learner server starts admitted at once; the rest wait in order. 0: from this host's "
        "cores and memory, worked out at the first start.",
    )
    admitted_start_timeout = Integer(
        600,
        config=True,
        help="Seconds a start may take once admitted, until the server answers. Time spent queued "
        "does not count (Spawner.start_timeout is set far above it).",
    )
    phase = Unicode("")  # queued | starting | answering, shown on the spawn page
    # Seconds the engine's own queue held the current start (queued_in_engine), and since when.
    _engine_queued: float = 0.0
    _engine_queued_since: float | None = None

    # One queue for the hub process, shared by every learner's spawner; built at the first start.
    _admission: ClassVar[AdmissionQueue | None] = None

    @property
    def admission(self) -> AdmissionQueue:
        cls = WorkshopSpawner
        if cls._admission is None:
            capacity = self.start_capacity or host_start_capacity(
                float(os.cpu_count() or 1), available_memory()
            )
            cls._admission = AdmissionQueue(capacity)
            self.log.info("dlworkshop: admitting %d learner server starts at once, the rest queue", capacity)
        return cls._admission

    @property
    def admission_key(self) -> str:
        return f"{self.user.name}/{self.name}"

    async def start_engine(self) -> Any:
        """Have the engine start the server; returns what Spawner.start returns (its URL)."""
        return await super().start()  # type: ignore[misc]  # the engine's Spawner, after this mixin

    def engine_message(self) -> str | None:
        """What the engine says while it starts the server, for the spawn page (None: nothing more)."""
        return None

    async def start(self) -> Any:
        queue = self.admission
        self.phase = "queued"
        queued_at = time.monotonic()
        self._engine_queued = 0.0
        self._engine_queued_since = None
        try:
            async with queue.admitted(self.admission_key):
                waited = time.monotonic() - queued_at
                if waited > 1:
                    self.log.info("%s admitted after %.0f s in the queue", self._log_name, waited)
                return await self._bounded(self._start_until_answering())
        finally:
            self.phase = ""

    async def _bounded(self, starting: Any) -> Any:
        """Await the start within admitted_start_timeout, less the time the engine's own queue held it."""
        began = time.monotonic()
        task = asyncio.ensure_future(starting)
        try:
            while True:
                queued = self._engine_queued + (
                    time.monotonic() - self._engine_queued_since if self._engine_queued_since else 0.0
                )
                left = self.admitted_start_timeout - (time.monotonic() - began - queued)
                if left <= 0 and self._engine_queued_since is None:
                    raise TimeoutError(
                        f"the server did not answer within {self.admitted_start_timeout} s of its start"
                    )
                done, _ = await asyncio.wait({task}, timeout=max(left, 1.0))
                if done:
                    return task.result()
        finally:
            if not task.done():
                task.cancel()

    @contextlib.asynccontextmanager
    async def queued_in_engine(self) -> AsyncIterator[None]:
        """For an engine with a scheduler of its own (Slurm): while the engine queues the server, its
        admission place goes to the next learner and the time does not count against
        admitted_start_timeout. The place is not taken again: the engine's queue now orders starts."""
        self.admission.release(self.admission_key)
        self._engine_queued_since = time.monotonic()
        try:
            yield
        finally:
            self._engine_queued += time.monotonic() - self._engine_queued_since
            self._engine_queued_since = None

    async def _start_until_answering(self) -> Any:
        self.phase = "starting"
        started = await self.start_engine()
        self.phase = "answering"
        url = started if isinstance(started, str) else f"http://{started[0]}:{started[1]}"
        await self._until_answering(f"{url.rstrip('/')}{self.server.base_url}api")
        return started

    async def _until_answering(self, url: str) -> None:
        """Ask every 0.2 s (a backoff would add up to a second to every start, with the place
        held); ask the engine every 2 s, so a server that died does not hold the place."""
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
                    raise RuntimeError("the server exited while starting; its log says why")
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
        place = queue.place(self.admission_key)
        if self.phase == "queued" and place:
            starting = len(queue.starting)
            return {
                "progress": 10,
                "message": f"The room is starting together: you are number {place} in the queue "
                f"({starting} {'server' if starting == 1 else 'servers'} starting now). "
                "Your place is kept; no need to reload.",
            }
        if self.phase == "starting":
            return {"progress": 40, "message": self.engine_message() or "Your turn: starting your server"}
        if self.phase == "answering":
            return {"progress": 70, "message": "Your server is up; waiting for JupyterLab to answer"}
        return None
