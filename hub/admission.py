"""Admission of learner server starts at the rate the host can carry.

At 09:00 the whole room asks for a server at once. Started together, thirty Python servers share
two cores, every one of them is slow, and the hub gives up on some (the plain DockerSpawner hub's
failure). Admitted a few at a time, each start takes its usual second or two, the rest wait their
turn in order, see their place on the spawn page, and are never failed by a timeout while waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field


@dataclass
class AdmissionQueue:
    """First come, first admitted; at most `capacity` starts run at once."""

    capacity: int
    starting: set[str] = field(default_factory=set)
    waiting: list[tuple[str, asyncio.Future[None]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.capacity < 1:
            raise ValueError("capacity must be at least 1")

    def place(self, key: str) -> int | None:
        """1-based place among those waiting, 0 while starting, None when not in the queue."""
        if key in self.starting:
            return 0
        for index, (waiting_key, _) in enumerate(self.waiting, start=1):
            if waiting_key == key:
                return index
        return None

    def _admit_next(self) -> None:
        while self.waiting and len(self.starting) < self.capacity:
            key, admitted = self.waiting.pop(0)
            if admitted.done():  # cancelled while waiting
                continue
            self.starting.add(key)
            admitted.set_result(None)

    def release(self, key: str) -> None:
        """Give a place back before the `admitted` block ends (an engine queuing the start itself)."""
        if key in self.starting:
            self.starting.discard(key)
            self._admit_next()

    @contextlib.asynccontextmanager
    async def admitted(self, key: str) -> AsyncIterator[None]:
        """Wait for a place (no timeout: waiting is not failing), hold it for the block."""
        if len(self.starting) < self.capacity and not self.waiting:
            self.starting.add(key)
        else:
            admitted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self.waiting.append((key, admitted))
            try:
                await admitted
            except BaseException:
                # Cancelled (the learner stopped the pending start): give the place back.
                self.waiting = [(k, f) for k, f in self.waiting if f is not admitted]
                if admitted.done() and not admitted.cancelled():
                    self.starting.discard(key)
                    self._admit_next()
                raise
        try:
            yield
        finally:
            self.starting.discard(key)
            self._admit_next()
