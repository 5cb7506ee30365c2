"""Admission of learner server starts at the rate the host can carry.

At 09:00 the whole room asks for a server at once. Started together, thirty Python servers share
two cores, every one of them is slow, and the hub gives up on some (the plain DockerSpawner hub's
failure). Admitted a few at a time, each start takes its usual second or two, the rest wait their
turn in order, see their place on the spawn page, and are never failed by a timeout while waiting.

The order is that of the learners' requests. After a hub restart, the starts that were in flight
are put back in their order (`reserve`, hub/spawning.py) before the hub answers anyone, and each
takes its place when it is asked for again.

How many start at once follows the host (hub.start_capacity auto): what a learner costs here phase
by phase, measured by `StartCosts` as starts happen, several samples each (the start's CPU seconds
from the engine and its time spent waiting on something else, then the CPU of the first seconds
after the server answers), and the cores free when a burst of arrivals begins (`HostCpu`: the hub
and running learners included). The order stays that of arrival whatever the capacity. A number
in workshop.yaml fixes it instead.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
import os
import statistics
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from dlworkshop.capacity import START_CPU_SECONDS, START_WAIT_SECONDS, host_start_capacity
from dlworkshop_learner.host_cpu import HostCpu

__all__ = ["HostCpu"]  # the hub's admission reads the host as a learner's server does


@dataclass(order=True)
class _Waiting:
    requested: float
    arrival: int  # ties (and clocks that step) keep the order of arrival
    key: str = field(compare=False)
    admitted: asyncio.Future[None] = field(compare=False)


@dataclass
class AdmissionQueue:
    """First asked, first admitted; at most `capacity` starts run at once."""

    capacity: int
    starting: set[str] = field(default_factory=set)
    waiting: list[_Waiting] = field(default_factory=list)
    # Places kept for starts a restart interrupted, until they are asked for again.
    reserved: dict[str, _Waiting] = field(default_factory=dict)
    _arrivals: itertools.count[int] = field(default_factory=itertools.count, repr=False)

    def __post_init__(self) -> None:
        if self.capacity < 1:
            raise ValueError("capacity must be at least 1")

    def place(self, key: str) -> int | None:
        """1-based place among those waiting, 0 while starting, None when not in the queue."""
        if key in self.starting:
            return 0
        for index, entry in enumerate(self.waiting, start=1):
            if entry.key == key:
                return index
        return None

    def _admit_next(self) -> None:
        while self.waiting and len(self.starting) < self.capacity:
            entry = self.waiting.pop(0)
            if entry.admitted.done():  # cancelled while waiting
                continue
            self.starting.add(entry.key)
            entry.admitted.set_result(None)

    def resize(self, capacity: int) -> None:
        """A new capacity for the starts to come (a place already held is never taken back)."""
        self.capacity = max(1, capacity)
        self._admit_next()

    def release(self, key: str) -> None:
        """Give a place back before the `admitted` block ends (an engine queuing the start itself)."""
        if key in self.starting:
            self.starting.discard(key)
            self._admit_next()

    def _enqueue(self, key: str, requested: float) -> _Waiting:
        entry = _Waiting(requested, next(self._arrivals), key, asyncio.get_running_loop().create_future())
        bisect.insort(self.waiting, entry)
        return entry

    def reserve(self, key: str, requested: float, hold_for: float = 120) -> None:
        """Keep a place, in the order of `requested` (time.time() of the learner's request), for a
        start that will be asked for again; once starts arrive it may be admitted before its own
        does. A place nobody takes within `hold_for` seconds is given to the next."""
        entry = self.reserved[key] = self._enqueue(key, requested)
        # Admitted only once starts arrive (`admitted`): every place is kept before the first is given.
        asyncio.get_running_loop().call_later(hold_for, self._expire, entry)

    def requested(self, key: str) -> float | None:
        """When the start a place is kept for was first asked (None: no place kept)."""
        entry = self.reserved.get(key)
        return entry.requested if entry else None

    def _expire(self, entry: _Waiting) -> None:
        if self.reserved.get(entry.key) is not entry:
            return  # taken
        del self.reserved[entry.key]
        if entry in self.waiting:
            self.waiting.remove(entry)
            entry.admitted.cancel()
        else:
            self.starting.discard(entry.key)
            self._admit_next()

    @contextlib.asynccontextmanager
    async def admitted(self, key: str, requested: float | None = None) -> AsyncIterator[None]:
        """Wait for a place (no timeout: waiting is not failing), hold it for the block.
        `requested`: when the learner asked (time.time()); now by default."""
        requested = time.time() if requested is None else requested
        ahead = [entry for entry in self.waiting if entry.requested <= requested]
        kept = self.reserved.pop(key, None)
        if kept is None and len(self.starting) < self.capacity and not ahead:
            self.starting.add(key)
        else:
            entry = kept or self._enqueue(key, requested)
            self._admit_next()  # places may be free, with kept places ahead
            try:
                await entry.admitted
            except BaseException:
                # Cancelled (the learner stopped the pending start): give the place back.
                self.waiting = [other for other in self.waiting if other is not entry]
                if entry.admitted.done() and not entry.admitted.cancelled():
                    self.starting.discard(key)
                    self._admit_next()
                raise
        try:
            yield
        finally:
            self.starting.discard(key)
            self._admit_next()


@dataclass
class StartCosts:
    """What a learner costs on this host, phase by phase, from the last learners the engine
    measured: the start's CPU seconds until the server answered (median), the seconds of the start
    spent waiting on something else than a core (the lower quartile: a start slowed by its
    neighbours waits for the CPU too, which is not what this counts), and the CPU the server used
    in the `AFTER_WINDOW` seconds after it answered (median: the learner's first kernel and cell,
    which compete with the starts after it). Each phase keeps its default until `min_samples` of
    it are measured: one start is no measure of the next."""

    cpu_seconds: float = START_CPU_SECONDS
    wait_seconds: float = START_WAIT_SECONDS
    after_seconds: float = 0.0  # until measured, nothing assumed: a learner may not open a notebook at once
    min_samples: int = 3
    measured: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=20))
    measured_after: deque[float] = field(default_factory=lambda: deque(maxlen=20))

    def record(self, wall_seconds: float, cpu_seconds: float | None) -> None:
        """One start: wall seconds from admission until the server answered, and its CPU seconds
        (None where the engine does not say)."""
        if cpu_seconds is None or cpu_seconds <= 0:
            return
        self.measured.append((cpu_seconds, max(0.0, wall_seconds - cpu_seconds)))
        if len(self.measured) >= self.min_samples:
            self.cpu_seconds = statistics.median(cpu for cpu, _ in self.measured)
            waits = sorted(wait for _, wait in self.measured)
            self.wait_seconds = waits[(len(waits) - 1) // 4]

    def record_after(self, cpu_seconds: float) -> None:
        """One server's CPU over the AFTER_WINDOW seconds after it answered."""
        self.measured_after.append(max(0.0, cpu_seconds))
        if len(self.measured_after) >= self.min_samples:
            self.after_seconds = statistics.median(self.measured_after)

    @property
    def settled(self) -> bool:
        """Every phase measured enough to stand for the next learners."""
        return min(len(self.measured), len(self.measured_after)) >= self.min_samples

    def said(self) -> str:
        return (
            f"a start {self.cpu_seconds:.2f} CPU-s + {self.wait_seconds:.1f} s waiting, then "
            f"{self.after_seconds:.2f} CPU-s right after it answers "
            f"({len(self.measured)} starts, {len(self.measured_after)} followed)"
        )


# Seconds after a server answers over which its CPU is read again (StartCosts.after_seconds).
AFTER_WINDOW = 20.0


@dataclass
class HostAdmission:
    """The admission capacity of `hub.start_capacity: auto`: worked out again when a burst of
    arrivals begins (nothing starting, nothing queued) from the cores free then and the measured
    cost of a start; during the burst it stays as it is."""

    cores: float
    available_memory: Callable[[], int]
    host: HostCpu
    costs: StartCosts = field(default_factory=StartCosts)
    busy_cores: float = 0.0
    # A reading over less than this is mostly noise: the last one is kept instead.
    min_interval: float = 1.0
    # A reading over more than this says little of now: the 1-minute load average stands in.
    max_age: float = 30.0
    _read_at: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.busy_cores = recent_load(self.cores)

    def capacity(self) -> int:
        """At the start of a burst: the cores busy now, read afresh, and the costs measured so far."""
        age = time.monotonic() - self._read_at
        if age >= self.min_interval:
            busy = self.host.busy_cores()
            self._read_at = time.monotonic()
            self.busy_cores = recent_load(self.cores) if busy is None or age > self.max_age else busy
        return self.capacity_for_the_costs()

    def capacity_for_the_costs(self) -> int:
        """The capacity for costs measured since, with the cores read when the burst began (during a
        burst the host's busy cores are the starts themselves)."""
        return host_start_capacity(
            self.cores,
            self.available_memory(),
            busy_cores=self.busy_cores,
            cpu_seconds=self.costs.cpu_seconds,
            wait_seconds=self.costs.wait_seconds,
            after_seconds=self.costs.after_seconds,
        )


def recent_load(cores: float) -> float:
    """Cores busy lately, from the 1-minute load average (it counts waiting on the disk too)."""
    return min(cores, os.getloadavg()[0])
