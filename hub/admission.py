"""Admission of learner server starts at the rate the host can carry.

At 09:00 the whole room asks for a server at once. Started together, thirty Python servers share
two cores, every one of them is slow, and the hub gives up on some (the plain DockerSpawner hub's
failure). Admitted a few at a time, each start takes its usual second or two, the rest wait their
turn in order, see their place on the spawn page, and are never failed by a timeout while waiting.

The order is that of the learners' requests. After a hub restart, the starts that were in flight
are put back in their order (`reserve`, hub/spawning.py) before the hub answers anyone, and each
takes its place when it is asked for again.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field


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
