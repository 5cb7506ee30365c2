"""What every learner's server start goes through, whatever engine runs it.

`WorkshopSpawner` is mixed in front of an engine's spawner (DockerSpawner, batchspawner's
SlurmSpawner, KubeSpawner): the start waits its turn in the hub's admission queue, the engine starts
the server, and the admission place is held until the server answers, since its imports are where
a start's CPU goes. The spawn page shows the learner's place in the queue, then the start's steps.
Backends (hub/backends/) override only `start_engine` and, where the engine says more,
`engine_message` (and `get_url`, where the engine knows where a server it started listens).

A hub restart in the middle of the rush strands nobody. A start records itself in JupyterHub's
database (the spawner's state) before it waits its turn. After a restart, JupyterHub checks every
server its database holds (`init_spawners`, since `cleanup_servers` is off), and `poll` answers
for the starts that were in flight: a server that the engine runs and that answers is adopted
(JupyterHub takes its real address from `get_url`); anything else is reported stopped, JupyterHub
cleans up what is left of it, and the start is asked for again through the hub's own API, as the
learner would, going back to its place in the queue. The spawn page reconnects to the progress
stream by itself (hub/templates/spawn_pending.html).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from tornado import web
from tornado.httpclient import AsyncHTTPClient
from traitlets import Float, Integer, Unicode
from traitlets.config import LoggingConfigurable

from dlworkshop.capacity import available_memory
from dlworkshop.contract import HUB_API_URL_LOCAL, QUEUED_START_TIMEOUT
from dlworkshop.hubclient import HubError, HubSession, hub_url_of
from hub.admission import AFTER_WINDOW, AdmissionQueue, HostAdmission, HostCpu, StartCosts

__all__ = ["QUEUED_START_TIMEOUT", "START_STATE_KEY", "WorkshopSpawner"]

# The key of a start in flight in the spawner's state (JupyterHub's database): when it was asked for.
START_STATE_KEY = "dlworkshop_start"


class StartTimedOut(web.HTTPError):
    """An admitted start whose server did not answer in time. Not a TimeoutError: JupyterHub logs
    those as "failed to start in {Spawner.start_timeout} seconds", and start_timeout is the day-long
    bound over the queue (contract.QUEUED_START_TIMEOUT), not the time this start had."""

    def __init__(self, user: str, seconds: float) -> None:
        super().__init__(
            504, "%s's server did not answer within %d s of its start (hub.start_timeout)", user, seconds
        )
        # What the spawn page shows the learner (JupyterHub reads this attribute).
        self.jupyterhub_message = (
            f"Your server did not start within {seconds:.0f} s. Try again; if it fails again, "
            "please tell a helper."
        )


class WorkshopSpawner(LoggingConfigurable):
    """Admission, the spawn page's messages, the wait until the server answers, and starts that a
    hub restart interrupted. Mixed in front of a jupyterhub.spawner.Spawner subclass (a Spawner
    itself would have to be a whole engine)."""

    if TYPE_CHECKING:  # provided by the Spawner it is mixed into
        user: Any
        name: str
        server: Any
        orm_spawner: Any
        _log_name: str

        @property
        def active(self) -> bool: ...

        async def get_url(self) -> str: ...

        async def stop(self, now: bool = False) -> None: ...

    start_capacity = Integer(
        0,
        config=True,
        help="Learner server starts admitted at once; the rest wait in order. 0: from this host's "
        "free cores and memory and what a start measured here costs, worked out again whenever a "
        "burst of arrivals begins.",
    )
    admitted_start_timeout = Integer(
        600,
        config=True,
        help="Seconds a start may take once admitted, until the server answers. Time spent queued "
        "does not count (Spawner.start_timeout is set far above it).",
    )
    interrupted_start_grace = Integer(
        5,
        config=True,
        help="After a hub restart, seconds a server whose start the restart interrupted has to answer "
        "before it is started again. Short: a server that was still starting waits for the hub's API "
        "(jupyterhub-singleuser's check, with its own backoff), which answers only after this check; "
        "a new start is quicker.",
    )
    learner_cost_window = Float(
        AFTER_WINDOW,
        config=True,
        help="Seconds after a server answers over which its CPU is read again: what a learner's "
        "first kernel and cell cost, which the admission capacity counts (hub/admission.py).",
    )
    hub_api_url = Unicode(
        HUB_API_URL_LOCAL,
        config=True,
        help="The hub's API as the hub process itself reaches it: starts interrupted by a restart "
        "are asked for again there.",
    )
    phase = Unicode("")  # queued | starting | answering, shown on the spawn page
    # Seconds the engine's own queue held the current start (queued_in_engine), and since when.
    _engine_queued: float = 0.0
    _engine_queued_since: float | None = None
    # When the learner asked for this start (time.time()); a resumed start keeps the first request's.
    start_requested = Float(0.0)
    # From the state a restarted hub loaded: a start was in flight when the hub stopped.
    interrupted_start = Float(None, allow_none=True)
    resumed = False  # this start is one a restart interrupted (the spawn page says so)

    # One queue for the hub process, shared by every learner's spawner; built at the first start.
    _admission: ClassVar[AdmissionQueue | None] = None
    _background: ClassVar[set[asyncio.Task[None]]] = set()
    # Where the capacity is auto: the host's measurements that decide it.
    _host_admission: ClassVar[HostAdmission | None] = None
    # What starts cost on this host, measured whatever the capacity (the log says it).
    _start_costs: ClassVar[StartCosts] = StartCosts()
    # The costs the capacity was last worked out from (during a burst it follows newer ones).
    _fitted_costs: ClassVar[tuple[float, float, float] | None] = None

    @property
    def admission(self) -> AdmissionQueue:
        cls = WorkshopSpawner
        if cls._admission is None:
            if self.start_capacity:
                capacity = self.start_capacity
            else:
                cores = float(os.cpu_count() or 1)
                cls._host_admission = HostAdmission(
                    cores, available_memory, HostCpu(cores=cores), costs=cls._start_costs
                )
                capacity = cls._host_admission.capacity()
            cls._admission = AdmissionQueue(capacity)
            self.log.info("dlworkshop: admitting %d learner server starts at once, the rest queue", capacity)
        return cls._admission

    def _fit_capacity_to_the_host(self, queue: AdmissionQueue) -> None:
        """At the start of a burst (nothing starting or queued), admit what the host carries now;
        during one, follow the costs as more of them are measured (the cores read when it began)."""
        host = WorkshopSpawner._host_admission
        if host is None:
            return
        burst = bool(queue.starting or queue.waiting)
        costs = (host.costs.cpu_seconds, host.costs.wait_seconds, host.costs.after_seconds)
        if burst and costs == WorkshopSpawner._fitted_costs:
            return
        WorkshopSpawner._fitted_costs = costs
        capacity = host.capacity_for_the_costs() if burst else host.capacity()
        if capacity != queue.capacity:
            self.log.info(
                "dlworkshop: admitting %d starts at once (%.1f of %g cores busy, %s)",
                capacity,
                host.busy_cores,
                host.cores,
                host.costs.said(),
            )
            queue.resize(capacity)

    async def server_cpu_seconds(self) -> float | None:
        """CPU seconds the learner's server has used since it started, where the engine says."""
        return None

    def server_instance(self) -> str | None:
        """What names this start's server in the engine (a container's id), so that a reading taken
        later is of the same server; None where the engine does not say."""
        return None

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
        self._fit_capacity_to_the_host(queue)
        kept = queue.requested(self.admission_key)  # a start a restart interrupted: its place kept
        self.resumed = kept is not None
        self.start_requested = kept if kept is not None else time.time()
        self.phase = "queued"
        # From here on a restarted hub knows this start was in flight (see `poll`).
        self._save_state()
        queued_at = time.monotonic()
        self._engine_queued = 0.0
        self._engine_queued_since = None
        try:
            async with queue.admitted(self.admission_key, self.start_requested):
                admitted_at = time.monotonic()
                if admitted_at - queued_at > 1:
                    self.log.info(
                        "%s admitted after %.0f s in the queue", self._log_name, admitted_at - queued_at
                    )
                started = await self._bounded(self._start_until_answering())
                wall_seconds = time.monotonic() - admitted_at - self._engine_queued
            await self._record_cost(wall_seconds)  # the place already goes to the next learner
            return started
        finally:
            self.phase = ""

    async def _record_cost(self, wall_seconds: float) -> None:
        costs = WorkshopSpawner._start_costs
        try:
            cpu = await self.server_cpu_seconds()
        except Exception:  # a measurement, never a reason to fail a start
            self.log.debug("no CPU figure for %s's start", self._log_name, exc_info=True)
            return
        settled, first = costs.settled, not costs.measured
        costs.record(wall_seconds, cpu)
        if first and costs.measured:  # one sample, said; the costs follow from several
            self.log.info(
                "dlworkshop: a learner server start measured here: %.2f CPU-s, %.1f s waiting",
                *costs.measured[0],
            )
        if cpu is not None and cpu > 0:
            # The learner's first minute competes with the starts after theirs: read it again later.
            task = asyncio.ensure_future(self._record_after(cpu, self.server_instance()))
            WorkshopSpawner._background.add(task)
            task.add_done_callback(WorkshopSpawner._background.discard)
        if costs.settled and not settled:
            self.log.info("dlworkshop: what a learner costs here, measured: %s", costs.said())

    async def _record_after(self, answered_cpu: float, instance: str | None) -> None:
        """The server's CPU over learner_cost_window seconds after it answered (its first kernel and cell)."""
        await asyncio.sleep(self.learner_cost_window)
        if self.server_instance() != instance:  # stopped or started again since: not this server's
            return
        try:
            cpu = await self.server_cpu_seconds()
        except Exception:  # a measurement, never a reason to fail anything
            return
        if cpu is not None and cpu >= answered_cpu:  # the same server, still running
            costs = WorkshopSpawner._start_costs
            settled = costs.settled
            costs.record_after(cpu - answered_cpu)
            if costs.settled and not settled:
                self.log.info("dlworkshop: what a learner costs here, measured: %s", costs.said())

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
                    raise StartTimedOut(self.user.name, self.admitted_start_timeout)
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

    # --- state in JupyterHub's database, and starts a restart interrupted ---

    def get_state(self) -> dict[str, Any]:
        state: dict[str, Any] = super().get_state()  # type: ignore[misc]
        if self.phase:  # a start in flight (JupyterHub saves the state again once it is done)
            state[START_STATE_KEY] = {"requested": self.start_requested}
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)  # type: ignore[misc]
        start = state.get(START_STATE_KEY)
        if start:
            self.interrupted_start = float(start["requested"])

    def clear_state(self) -> None:
        super().clear_state()  # type: ignore[misc]
        self.interrupted_start = None

    def _save_state(self) -> None:
        """The state into JupyterHub's database now (JupyterHub itself saves it when a start ends)."""
        if self.orm_spawner is None:  # a spawner outside a hub
            return
        self.orm_spawner.state = self.get_state()
        self.user.db.commit()

    async def poll(self) -> int | str | None:
        # Taken before the engine's poll: batchspawner's clears the state of a job it never submitted.
        requested, self.interrupted_start = self.interrupted_start, None
        status = await super().poll()  # type: ignore[misc]
        if requested is None:
            return status
        # The first poll of a hub that restarted while this start was in flight: JupyterHub's
        # check of the servers in its database. The database has no address for the server yet, so
        # JupyterHub would wait http_timeout on a placeholder and then stop it.
        if status is None and await self._answers_after_restart():
            self.log.info(
                "dlworkshop: %s, started before the hub restarted, answers: adopted", self._log_name
            )
            self._save_state()
            return None
        asked = datetime.fromtimestamp(requested).strftime("%H:%M:%S")
        self.log.info(
            "dlworkshop: the hub restarted during %s's start (asked for at %s): asking for it again, "
            "in its place in the queue",
            self._log_name,
            asked,
        )
        # Its place, kept before the hub answers anyone: in the order the learners asked.
        self.admission.reserve(self.admission_key, requested)
        if status is None:  # started, not answering: nothing of the learner's runs in it yet
            await self.stop(now=True)
        task = asyncio.ensure_future(self._ask_again())
        WorkshopSpawner._background.add(task)
        task.add_done_callback(WorkshopSpawner._background.discard)
        # Not running (or not answering): JupyterHub stops what is left of it, then `_ask_again`.
        return status if status is not None else "its start was interrupted by a hub restart"

    async def _answers_after_restart(self) -> bool:
        """Does the server the engine runs answer, at the address the engine gives?"""
        try:
            url = await self.get_url()
        except Exception as exc:
            self.log.info("dlworkshop: no address for %s from the engine: %s", self._log_name, exc)
            return False
        if not url or (url == self.server.url and not self.server.ip):
            return False  # only JupyterHub's placeholder: this engine cannot say where it listens
        api = f"{url.rstrip('/')}/api"  # get_url is the server's URL, its base URL included
        try:
            await asyncio.wait_for(self._until_answering(api), self.interrupted_start_grace)
        except (asyncio.TimeoutError, RuntimeError):
            return False
        return True

    async def _ask_again(self) -> None:
        """Once JupyterHub has cleaned up what was left of an interrupted start, ask for the server
        again through the hub's API, with a short-lived token of the learner's own that can do
        nothing but that (the request is the learner's, made for them)."""
        deadline = time.monotonic() + 300
        while self.active:  # JupyterHub's check, then its stop of what was left
            if time.monotonic() > deadline:
                return
            await asyncio.sleep(0.2)
        token = self.user.new_api_token(
            note="dlworkshop: a start interrupted by a hub restart, asked for again",
            scopes=[f"servers!user={self.user.name}"],
            expires_in=300,
        )
        path = f"/hub/api/users/{self.user.name}/server" + (f"s/{self.name}" if self.name else "")
        try:
            async with HubSession(hub_url_of(self.hub_api_url), token=token, timeout=30) as hub:
                while True:
                    try:
                        await hub.request("POST", path, check=False)
                        return
                    except HubError as exc:  # the hub is not listening yet
                        if time.monotonic() > deadline:
                            self.log.error("dlworkshop: could not ask again for %s: %s", self._log_name, exc)
                            return
                        await asyncio.sleep(0.5)
        finally:
            self._forget_token(token)

    def _forget_token(self, token: str) -> None:
        from jupyterhub import orm

        found = orm.APIToken.find(self.user.db, token)
        if found is not None:
            self.user.db.delete(found)
            self.user.db.commit()

    # --- the spawn page ---

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
            who = "The hub restarted and kept your place" if self.resumed else "The room is starting together"
            return {
                "progress": 10,
                "message": f"{who}: you are number {place} in the queue "
                f"({starting} {'server' if starting == 1 else 'servers'} starting now). "
                "Your place is kept; no need to reload.",
            }
        if self.phase == "starting":
            return {"progress": 40, "message": self.engine_message() or "Your turn: starting your server"}
        if self.phase == "answering":
            return {"progress": 70, "message": "Your server is up; waiting for JupyterLab to answer"}
        return None
