"""Hot spares: ready servers kept for learners who arrive after 09:00 (shared-code mode).

Pre-warmed seats (hub/seats.py) cover the room at workshop.start; `prewarm.spares: N` keeps at
least N ready servers nobody has taken from pre-warm time until workshop.end, so a learner arriving
at 10:30 also finds a running server. A spare is a seat (seat-NN, numbered after prewarm.seats): a
first login takes it as it takes a seat, and its volume becomes the learner's; a returning learner
keeps what they had. Seats nobody has taken count as spares.

The hub's prewarm service keeps the pool (after pre-warming the seats), through the hub's API as
pre-warm does, so spares pass the same admission queue, quotas and GPU allocator as any start (a
spare holding a GPU holds it like a learner). It starts one spare at a time, at most one per
prewarm.refill_seconds, and none while learners' starts are pending: the rush comes first. At
workshop.end it stops every server nobody took. The spares it has named are listed on the hub
volume (spares.json), where the authenticator reads them at each login.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from dlworkshop import contract
from dlworkshop.hubclient import API, HubClient, HubError
from dlworkshop.settings import Settings
from hub.seats import seat_names, seats_taken

# Seconds between two looks at the room.
TICK_SECONDS = 5.0
# Users per page of the hub's user list (JupyterHub's api_page_max_limit by default).
PAGE = 200


def read_spares(path: Path) -> list[str]:
    """The spares named so far, in the order they were named."""
    return list(json.loads(path.read_text())) if path.exists() else []


def write_spares(path: Path, names: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_suffix(".tmp")
    scratch.write_text(json.dumps(names))
    os.replace(scratch, path)


@dataclass(frozen=True)
class Decision:
    """One look at the room: start a spare, stop the unclaimed ones (the window ended), or wait."""

    start: str | None = None
    stop: tuple[str, ...] = ()
    ended: bool = False
    why: str = ""


@dataclass
class SparePool:
    """Which spare to start or stop now; pure logic (the room and the times are handed in)."""

    spares: int
    seats: list[str]  # pre-warmed seats (prewarm.seats)
    begin: datetime  # pre-warm time: workshop.start minus prewarm.minutes_before
    end: datetime  # workshop.end
    refill_seconds: float
    named: list[str] = field(default_factory=list)  # spares named so far (spares.json)

    @classmethod
    def from_settings(cls, settings: Settings, named: list[str]) -> SparePool:
        workshop, prewarm = settings.workshop, settings.prewarm
        assert workshop.start is not None and workshop.end is not None  # the settings require both
        return cls(
            spares=prewarm.spares,
            seats=seat_names(settings.prewarm_seats),
            begin=workshop.start - timedelta(minutes=prewarm.minutes_before),
            end=workshop.end,
            refill_seconds=prewarm.refill_seconds,
            named=named,
        )

    def next_name(self) -> str:
        numbers = [int(name.split("-")[1]) for name in [*self.seats, *self.named]]
        return f"seat-{max(numbers, default=0) + 1:02d}"

    def decide(
        self,
        now: datetime,
        servers: Mapping[str, Mapping[str, Any]],
        taken: set[str],
        since_last_start: float | None,
    ) -> Decision:
        """`servers`: the hub's active servers by user (ready, pending); `taken`: seats learners
        hold; `since_last_start`: seconds since this pool last started a spare (None: never)."""
        free = [name for name in [*self.seats, *self.named] if name not in taken]
        if now >= self.end:
            return Decision(stop=tuple(n for n in free if n in servers), ended=True, why="the workshop ended")
        if now < self.begin:
            return Decision(why="before pre-warm time")
        ready = [n for n in free if servers.get(n, {}).get("ready")]
        starting = [n for n in free if servers.get(n, {}).get("pending") == "spawn"]
        if len(ready) + len(starting) >= self.spares:
            return Decision(why=f"{len(ready)} ready, {len(starting)} starting")
        if starting:
            return Decision(why=f"one at a time: {starting[0]} is starting")
        rush = [n for n, s in servers.items() if s.get("pending") == "spawn" and n not in free]
        if rush:
            return Decision(why=f"{len(rush)} learners' starts first")
        if since_last_start is not None and since_last_start < self.refill_seconds:
            return Decision(why="refill pace")
        # A seat or spare nobody took whose server has gone (culled idle, or a failed start) first.
        stopped = next((n for n in free if n not in servers), None)
        return Decision(start=stopped or self.next_name(), why=f"{len(ready)} ready of {self.spares}")


def active_servers(hub: HubClient) -> dict[str, dict[str, Any]]:
    """Every user's default server that runs or is starting or stopping, by user."""
    servers: dict[str, dict[str, Any]] = {}
    offset = 0
    while True:
        page = hub.request("GET", f"{API}/users?state=active&offset={offset}&limit={PAGE}").json()
        for user in page:
            server = user.get("servers", {}).get("")
            if server is not None:
                servers[user["name"]] = server
        if len(page) < PAGE:
            return servers
        offset += len(page)


def keep_spares(
    hub: HubClient,
    settings: Settings,
    data: Path,
    say: Callable[[str], object] = print,
    now: Callable[[], datetime] = lambda: datetime.now().astimezone(),
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], object] = time.sleep,
) -> None:
    """Keep the pool until workshop.end, then stop the servers nobody took and return."""
    spares_file, seats_file = data / contract.SPARES_FILE, data / contract.SEATS_FILE
    pool = SparePool.from_settings(settings, read_spares(spares_file))
    naive = pool.end.tzinfo is None  # a naive workshop.end is the host's local time
    say(f"spares: keeping {pool.spares} ready until {pool.end.isoformat(timespec='minutes')}")
    last_start: float | None = None
    while True:
        moment = now()
        moment = moment.replace(tzinfo=None) if naive else moment
        try:
            decision = pool.decide(
                moment, active_servers(hub), seats_taken(seats_file), _since(last_start, clock)
            )
            if decision.start:
                if decision.start not in [*pool.seats, *pool.named]:
                    pool.named.append(decision.start)
                    write_spares(spares_file, pool.named)
                say(f"spares: starting {decision.start} ({decision.why})")
                last_start = clock()  # a refused start counts too: retries keep the pace
                hub.server(decision.start, create_user=True)
                hub.start(decision.start)
            for name in decision.stop:
                say(f"spares: stopping {name}, which nobody took ({decision.why})")
                hub.stop(name, wait=None)
        except HubError as exc:
            # The hub restarting, or a start refused: the next look tries again.
            say(f"spares: the hub's API failed: {exc}")
            decision = Decision()
        if decision.ended:
            return
        sleep(TICK_SECONDS)


def _since(moment: float | None, clock: Callable[[], float]) -> float | None:
    return None if moment is None else clock() - moment
