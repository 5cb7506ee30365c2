"""Login rate limiting that fits a classroom behind one NAT, where every learner has the same address.

Failures are counted per (address, name) and per address, over the last minute. A failure is
answered after a delay that doubles with each failure past the allowance (1, 2, 4... up to
`max_delay` seconds), and attempts under one (address, name) are checked one at a time, so a
delay cannot be skipped by asking in parallel. Nothing is ever locked: after the delay a correct
login succeeds. A correct login is never delayed by other people's failures: it waits only behind
attempts under its own name from its own address. Once an address passes its (higher) ceiling,
every failure from it is delayed, from the first under each name. Offenders are logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

WINDOW = 60.0  # seconds: the settings are "per minute"
_Key = TypeVar("_Key", str, tuple[str, str])  # an address, or an (address, name)


@dataclass
class LoginLimiter:
    per_name: int
    per_address: int
    max_delay: float = 30.0
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("dlworkshop.logins"))
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    _by_name: dict[tuple[str, str], deque[float]] = field(default_factory=dict)
    _by_address: dict[str, deque[float]] = field(default_factory=dict)
    _turns: dict[tuple[str, str], asyncio.Lock] = field(default_factory=dict)
    _waiting: dict[tuple[str, str], int] = field(default_factory=dict)

    def _recent(self, table: dict[_Key, deque[float]], key: _Key) -> deque[float]:
        window = table.get(key)
        if window is None:
            return deque()
        while window and window[0] <= self.clock() - WINDOW:
            window.popleft()
        if not window:
            del table[key]
        return window

    def failures(self, address: str, name: str) -> tuple[int, int]:
        """Failures in the last minute under (address, name), and from the address."""
        return len(self._recent(self._by_name, (address, name))), len(self._recent(self._by_address, address))

    def delay(self, address: str, name: str) -> float:
        """Seconds the latest failure under (address, name) is answered after."""
        under_name, from_address = self.failures(address, name)
        allowed = self.per_name if from_address <= self.per_address else 0
        excess = under_name - allowed
        return 0.0 if excess <= 0 else float(min(2 ** (excess - 1), self.max_delay))

    def failed(self, address: str, name: str) -> float:
        """Count a failure; returns the seconds to hold its answer (logging the offender when > 0)."""
        now = self.clock()
        self._by_name.setdefault((address, name), deque()).append(now)
        by_address = self._by_address.setdefault(address, deque())
        by_address.append(now)
        under_name, from_address = self.failures(address, name)
        if from_address == self.per_address + 1:
            self.log.warning(
                "login failures: %d from %s in the last minute; its further failures are delayed",
                from_address,
                address,
            )
        delay = self.delay(address, name)
        if delay:
            self.log.warning(
                "login failures: %d under the name %r from %s in the last minute; answering after %.0f s",
                under_name,
                name,
                address,
                delay,
            )
        self._forget_the_old()
        return delay

    async def refused(self, address: str, name: str) -> None:
        """Count a failure and hold its answer for its delay (inside `turn`: so is the next attempt)."""
        await self.sleep(self.failed(address, name))

    def succeeded(self, address: str, name: str) -> None:
        """A correct login clears its own name's failures (not the address's)."""
        self._by_name.pop((address, name), None)

    @contextlib.asynccontextmanager
    async def turn(self, address: str, name: str) -> AsyncIterator[None]:
        """One attempt at a time under (address, name): a held (delayed) failure holds the next."""
        key = (address, name)
        lock = self._turns.setdefault(key, asyncio.Lock())
        self._waiting[key] = self._waiting.get(key, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._waiting[key] -= 1
            if not self._waiting[key]:
                del self._waiting[key], self._turns[key]

    def _forget_the_old(self) -> None:
        """Drop windows with no recent failure, so names tried once do not pile up."""
        if len(self._by_name) > 512:
            for key in list(self._by_name):
                self._recent(self._by_name, key)
        if len(self._by_address) > 512:
            for address in list(self._by_address):
                self._recent(self._by_address, address)
