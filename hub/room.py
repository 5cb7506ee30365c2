"""The room at a glance, for the instructor and the helpers: who is queued (and where), starting,
running, stopped or culled, since when, their last activity, what their server uses against its
quota, their kernels (busy or idle), their GPU share and the size of their work folder.

Where the data lives decides where this code runs. The hub process knows the queue (it is in its
memory: hub/admission.py), every server's state and activity, and who stopped a server (the
culler's requests pass through it); the engine knows what servers use (the backend asks it:
`Backend.learner_usage`, `host_usage`); each learner's server knows its kernels, the notebooks
they run and its memory cgroup's OOM kills (dlworkshop_learner/memory.py), and the hub asks it with
a token that opens that one server only. So the view is one route of the hub's own API,
`GET /hub/api/room`, readable with the `custom:dlworkshop:room` scope, which admins and helpers
(auth.helpers) hold: `dlworkshop status` asks it through the hub's public URL with an admin's or
a helper's token, from anywhere, with no SSH; on the hub of `dlworkshop up` it asks from inside
the hub container with the `room` service's token (`python -m hub.room`). JupyterHub calls the
route's mechanism (extra_handlers) deprecated in favour of services, but a service is another
process and cannot see the queue.

The same module logs what helpers do: every time a helper or an admin is let into a learner's
server (JupyterHub's OAuth step, once per browser session on that server), the hub logs one line
naming both. Admins close the workshop through `POST /hub/api/room/close` (hub/closing.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupyterhub.apihandlers.base import APIHandler
from jupyterhub.scopes import Scope
from tornado import web

from dlworkshop import contract
from dlworkshop.settings import Settings
from hub.backends.base import HostUsage, LearnerUsage
from hub.closing import DEFAULT_NOTICE, Closing
from hub.room_rows import (
    StopBook,
    host_fields,
    iso,
    kernel_counts,
    memory_facts,
    merged,
    server_state,
    server_usage,
    totals,
    usage_fields,
)
from hub.seats import SEAT

if TYPE_CHECKING:
    from hub.backends.base import Backend

# A learner's server is asked about itself with a token good for this long, made again when refused.
SERVER_TOKEN_LIFETIME = 12 * 3600
SERVER_TIMEOUT = 3.0
# A server's CPU figure is its use between two answers this far apart (as the engine's).
SAMPLE_SECONDS = 0.5
SERVERS_ASKED_AT_ONCE = 32
# The server the culler stops: DELETE .../hub/api/users/<name>/server
_SERVER_PATH = re.compile(r"/api/users/([^/]+)/server$")


@dataclass
class Room:
    """The room view's state in the hub process: one per hub (see `room_for`)."""

    settings: Settings
    stops_file: Path
    closed_file: Path
    seats_file: Path
    backend: Backend | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        self.stops = StopBook(self.stops_file)
        self._tokens: dict[str, str] = {}
        # Learners' servers asked at once, at most: a room of 200 is not 600 requests in one go.
        self._asking = asyncio.Semaphore(SERVERS_ASKED_AT_ONCE)

    def __deepcopy__(self, memo: dict[int, Any]) -> Room:
        # JupyterHub deep-copies config values; the hub process has one room.
        return self

    @property
    def closing(self) -> Closing:
        auth, workshop = self.settings.auth, self.settings.workshop
        return Closing(
            self.closed_file,
            workshop.end,
            workshop.export_notice or DEFAULT_NOTICE,
            frozenset([*auth.admins, *auth.helpers]),
        )

    # ---- hooks JupyterHub calls --------------------------------------------------------------

    def record_stop(self, spawner: Any) -> None:
        """Spawner.post_stop_hook: when each server stopped."""
        if spawner.name == "":
            self.stops.stopped(spawner.user.name)

    def log_request(self, handler: Any) -> None:
        """The hub's request log (JupyterHub's own line), then what the room notes from a request:
        a helper or an admin let into someone else's server, and the culler stopping a server."""
        from jupyterhub.log import log_request

        log_request(handler)
        try:
            self._note(handler)
        except Exception:  # the log must never fail a request
            handler.log.exception("dlworkshop: the room could not note %s", handler.request.path)

    def _note(self, handler: Any) -> None:
        from jupyterhub import orm

        request, status = handler.request, handler.get_status()
        if status >= 400:
            return
        who = getattr(handler, "_jupyterhub_user", None)
        if (
            request.method == "DELETE"
            and isinstance(who, orm.Service)
            and who.name == contract.CULLER_SERVICE
        ):
            found = _SERVER_PATH.search(request.path)
            if found:
                self.stops.culled(found.group(1))
            return
        if not request.path.endswith("/api/oauth2/authorize") or status != 302 or who is None:
            return
        if isinstance(who, orm.Service):
            return
        client_id = handler.get_argument("client_id", "")
        client = handler.db.query(orm.OAuthClient).filter_by(identifier=client_id).one_or_none()
        spawner = client.spawner if client is not None else None
        owner = spawner.user.name if spawner is not None else None
        if owner and owner != who.name:
            role = "admin" if who.admin else ("helper" if who.name in self.settings.auth.helpers else "user")
            typed = self.display_names().get(owner)
            shown = f"{typed} ({owner})" if typed else owner
            handler.log.info(
                "dlworkshop: %s %s opened the server of %s (%s %s from %s)",
                role,
                who.name,
                shown,
                request.method,
                request.path,
                request.remote_ip,
            )

    # ---- the view ------------------------------------------------------------------------------

    def display_names(self) -> dict[str, str]:
        """Seat -> the name the learner typed (shared-code mode, hub/seats.py)."""
        try:
            claimed = json.loads(self.seats_file.read_text())
        except (FileNotFoundError, ValueError):
            return {}
        return {seat: name for name, seat in claimed.items()}

    def start_capacity(self) -> tuple[int, int]:
        """(starts admitted at once, starts holding a place now)."""
        from hub.spawning import WorkshopSpawner

        queue = WorkshopSpawner._admission
        if queue is not None:
            return queue.capacity, len(queue.starting)
        capacity = self.settings.hub.start_capacity
        if isinstance(capacity, int):
            return capacity, 0
        if self.backend is not None and self.backend.auto_start_capacity:
            return self.backend.auto_start_capacity, 0
        from dlworkshop.capacity import available_memory, host_start_capacity

        return host_start_capacity(float(os.cpu_count() or 1), available_memory()), 0

    def server_token(self, user: Any) -> str:
        """A token of the learner's that opens their own server only: what the hub hands the
        learner's server when asking it about itself (never a token that opens others')."""
        token = self._tokens.get(user.name)
        if token is None:
            token = user.new_api_token(
                note="dlworkshop room view",
                scopes=[f"access:servers!server={user.name}/"],
                expires_in=SERVER_TOKEN_LIFETIME,
            )
            self._tokens[user.name] = token
        return token

    async def _ask(self, user: Any, spawner: Any, path: str) -> Any:
        """GET a path of the learner's server API; its JSON, or None."""
        from tornado.httpclient import AsyncHTTPClient

        url = f"{spawner.server.url.rstrip('/')}/api/{path}"
        headers = {"Authorization": f"token {self.server_token(user)}"}
        try:
            answer = await AsyncHTTPClient().fetch(
                url, headers=headers, request_timeout=SERVER_TIMEOUT, raise_error=False
            )
        except Exception:
            return None
        if answer.code in (401, 403):
            self._tokens.pop(user.name, None)
        if answer.code != 200:
            return None
        try:
            return json.loads(answer.body)
        except ValueError:
            return None

    @property
    def work_folder_from_server(self) -> bool:
        """Whether a server's own disk figure is its work folder's size: on Docker with
        resources.disk, ~/work is a file system of that size, and the engine's volume sizes leave
        out volumes with mount options (a device's). Elsewhere ~/work may be on a shared one."""
        return self.settings.hub.backend == "docker" and self.settings.resources.disk is not None

    async def ask_server(
        self, user: Any, spawner: Any, measure: bool, disk: bool = False
    ) -> tuple[dict[str, int] | None, LearnerUsage | None, dict[str, Any]]:
        """A running server's kernels, its memory cgroup and open notebooks (the learner image's
        dlworkshop_learner/memory.py: the OOM kills no engine counts) and, with `measure`, what it
        says it uses (jupyter-resource-usage: its processes' memory, and their CPU between two
        answers SAMPLE_SECONDS apart: the first answer primes it); with `disk` alone, one answer
        (its work folder's use)."""
        async with self._asking:
            asked = [
                self._ask(user, spawner, "kernels"),
                self._ask(user, spawner, contract.learner.MEMORY_API),
            ]
            if not measure and not disk:
                kernels, memory = await asyncio.gather(*asked)
                return kernel_counts(kernels), None, memory_facts(memory)
            kernels, memory, first = await asyncio.gather(*asked, self._ask(user, spawner, "metrics/v1"))
            if not measure:
                return kernel_counts(kernels), server_usage(first), memory_facts(memory)
            await asyncio.sleep(SAMPLE_SECONDS)
            said = server_usage(await self._ask(user, spawner, "metrics/v1"))
            return kernel_counts(kernels), said, memory_facts(memory)

    def person(self, user: Any, seats: dict[str, str]) -> tuple[dict[str, Any], Any]:
        """What the hub knows of one person and their default server; the spawner when it is ready."""
        orm_user = user.orm_user
        orm_spawner = orm_user.orm_spawners.get("")
        spawner = user.spawners[""] if orm_spawner is not None else None
        stop = self.stops.last(user.name)
        state = "not started" if stop is None else ("culled" if stop[1] else "stopped")
        place = detail = None
        since = stop[0] if stop is not None else orm_user.created
        last_activity = user.last_activity
        if spawner is not None:
            state = server_state(spawner.pending, getattr(spawner, "phase", ""), bool(spawner.ready), stop)
            if state == "queued":
                place = spawner.admission.place(spawner.admission_key)
            elif state == "starting" and hasattr(spawner, "engine_message"):
                detail = spawner.engine_message()
            if state in ("queued", "starting", "running", "stopping"):
                since = orm_spawner.started
            last_activity = orm_spawner.last_activity or last_activity
        role = "admin" if user.admin else "helper" if user.name in self.settings.auth.helpers else "learner"
        if SEAT.match(user.name) and user.name not in seats:
            role = "seat"
        entry = {
            "name": seats.get(user.name, user.name),
            "user": user.name,
            "role": role,
            "state": state,
            "place": place,
            "detail": detail,
            "since": iso(since),
            "last_activity": iso(last_activity),
        }
        return entry, spawner if state == "running" else None

    async def engine_figures(self, problems: list[str]) -> tuple[dict[str, LearnerUsage], HostUsage | None]:
        """The backend's figures, asked in threads (the engine's API blocks); a failure is said."""
        backend = self.backend
        if backend is None:
            return {}, None
        measured, seen = await asyncio.gather(
            asyncio.to_thread(lambda: backend.learner_usage(backend.learner_servers())),
            asyncio.to_thread(backend.host_usage),
            return_exceptions=True,
        )
        usage: dict[str, LearnerUsage] = {}
        host: HostUsage | None = None
        if isinstance(measured, BaseException):
            problems.append(f"the engine's figures: {type(measured).__name__}: {measured}")
        else:
            usage = measured
        if isinstance(seen, BaseException):
            problems.append(f"the host's figures: {type(seen).__name__}: {seen}")
        else:
            host = seen
        return usage, host

    async def view(self, handler: Any) -> dict[str, Any]:
        """The room view: everyone the hub knows, their servers, the engine's figures, the totals."""
        from jupyterhub import orm

        problems: list[str] = []
        seats = self.display_names()
        people, ready = [], []
        for orm_user in handler.db.query(orm.User).order_by(orm.User.name):
            user = handler.users[orm_user]
            entry, spawner = self.person(user, seats)
            people.append(entry)
            if spawner is not None:
                ready.append((user, spawner))
        # The engine first (learners and host sampled together); then each running server is asked
        # for its kernels, and for its own account of what it uses where the engine measured nothing
        # (or, for the work folder, where the server's figure is the folder's: see above).
        usage, host = await self.engine_figures(problems)
        by_engine = {name for name, figures in usage.items() if figures.cpu_used is not None}
        sized = {name for name, figures in usage.items() if figures.work_bytes is not None}
        disk = self.work_folder_from_server
        answers = await asyncio.gather(
            *(
                self.ask_server(user, spawner, user.name not in by_engine, disk and user.name not in sized)
                for user, spawner in ready
            )
        )
        servers = {user.name: answer for (user, _), answer in zip(ready, answers, strict=True)}
        for entry in people:
            kernels, said, memory = servers.get(entry["user"], (None, None, memory_facts(None)))
            figures, measured = merged(usage.get(entry["user"]), said)
            entry.update(usage_fields(figures))
            entry.update(memory)
            entry["kernels"] = kernels
            entry["measured_by"] = measured
        capacity, starting = self.start_capacity()
        free_seats = sum(1 for p in people if p["role"] == "seat" and p["state"] == "running")
        return {
            "workshop": self.settings.workshop.name,
            "url": self.settings.hub.url,
            "backend": self.settings.hub.backend,
            "at": iso(datetime.now(timezone.utc)),
            "closed": self.closing.closed(),
            "totals": totals(people, capacity, starting, free_seats),
            "host": host_fields(host),
            "people": people,
            "problems": problems,
        }


_ROOMS: dict[tuple[str, str], Room] = {}


def room_for(settings: Settings, data: Path, backend: Backend | None = None) -> Room:
    """The hub's one room for these settings and hub volume (configuring twice gives the same)."""
    key = (settings.model_dump_json(), str(data))
    room = _ROOMS.get(key)
    if room is None:
        room = _ROOMS[key] = Room(
            settings, data / contract.STOPS_FILE, data / contract.CLOSED_FILE, data / contract.SEATS_FILE
        )
    if backend is not None and room.backend is None:
        room.backend = backend
    return room


class RoomHandler(APIHandler):
    """GET /hub/api/room: the room view, for holders of the room scope (admins, helpers)."""

    def initialize(self, room: Room) -> None:
        self.room = room

    def require(self, scope: str) -> None:
        if self.current_user is None:
            raise web.HTTPError(403, "Missing or invalid credentials.")
        if self.parsed_scopes.get(scope) != Scope.ALL:
            raise web.HTTPError(403, f"Action is not authorized with current scopes; requires {scope}")

    async def get(self) -> None:
        self.require(contract.ROOM_SCOPE)
        self.finish(json.dumps(await self.room.view(self)))


class CloseHandler(RoomHandler):
    """POST /hub/api/room/close {"message": ...} closes the workshop's logins; DELETE reopens them.
    Admins only."""

    async def post(self) -> None:
        self.require("admin:users")
        body = json.loads(self.request.body or b"{}")
        mark = self.room.closing.close(body.get("message") or None)
        self.log.info("dlworkshop: %s closed the workshop's logins", self.current_user.name)
        self.finish(json.dumps({"closed": mark}))

    async def delete(self) -> None:
        self.require("admin:users")
        reopened = self.room.closing.reopen()
        self.log.info("dlworkshop: %s reopened the workshop's logins", self.current_user.name)
        self.finish(json.dumps({"reopened": reopened, "closed": self.room.closing.closed()}))


class StartsHandler(APIHandler):
    """GET /hub/api/room/starts: how many learner server starts are queued and starting, for any
    token the hub knows (a learner's server asks with its own, before it starts its kernel ahead:
    dlworkshop_learner/kernels.py). Two counts, nobody's name."""

    def get(self) -> None:
        if self.current_user is None:
            raise web.HTTPError(403, "Missing or invalid credentials.")
        from hub.spawning import WorkshopSpawner

        queue = WorkshopSpawner._admission
        queued = sum(1 for entry in queue.waiting if not entry.admitted.done()) if queue else 0
        self.finish(json.dumps({"queued": queued, "starting": len(queue.starting) if queue else 0}))


def handlers(room: Room) -> list[tuple[str, type, dict[str, Any]]]:
    """The routes JupyterHub adds below its API (extra_handlers: /hub is prefixed)."""
    return [
        (rf"/api/{contract.ROOM_API}", RoomHandler, {"room": room}),
        (rf"/api/{contract.learner.HUB_STARTS_API}", StartsHandler, {}),
        (rf"/api/{contract.ROOM_API}/close", CloseHandler, {"room": room}),
    ]


def main() -> int:
    """`python -m hub.room` in the hub container: the room view as JSON, asked with the room
    service's token (what `dlworkshop status` runs on the hub of `dlworkshop up`)."""
    token_file = Path(contract.hub_data()) / contract.ROOM_TOKEN_FILE
    if not token_file.exists():
        print("this hub has no room view yet: re-create it with `dlworkshop up`", file=sys.stderr)
        return 2
    request = urllib.request.Request(
        f"{contract.HUB_API_URL_LOCAL}/{contract.ROOM_API}",
        headers={"Authorization": f"token {token_file.read_text().strip()}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            sys.stdout.write(answer.read().decode())
    except urllib.error.HTTPError as refused:
        print(f"the hub refused the room view: HTTP {refused.code} {refused.reason}", file=sys.stderr)
        return 3
    except OSError as exc:
        print(f"the hub did not answer: {exc}", file=sys.stderr)
        return 4
    return 0


if __name__ == "__main__":
    sys.exit(main())
