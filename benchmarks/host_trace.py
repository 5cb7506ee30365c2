"""What the surge benchmark (benchmarks/surge.py) reads of the host around each run: it waits for a
quiet machine before a run, traces the host's busy cores through it (/proc/stat), and decides which
hub goes first in each pair. Not a test; its pure parts are tested (tests/package/test_surge_benchmark.py).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

from dlworkshop.capacity import cpu_times

# A run starts only when the 1-minute load average is under this (what the runs before left decays).
QUIET_LOAD = 0.8


def wait_for_quiet(
    threshold: float = QUIET_LOAD,
    timeout: float = 900.0,
    load: Callable[[], tuple[float, float, float]] = os.getloadavg,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    poll: float = 5.0,
) -> dict[str, Any]:
    """Wait until the 1-minute load average is under `threshold` (at most `timeout` s). What the
    results file records of it: the load then, the seconds waited, and whether it was quiet."""
    began = clock()
    while True:
        now = [round(value, 2) for value in load()]
        waited = clock() - began
        if now[0] < threshold or waited >= timeout:
            return {"load_before": now, "waited_s": round(waited, 1), "quiet": now[0] < threshold}
        sleep(poll)


def pair_order(repeat: int, hubs: list[str]) -> list[str]:
    """The hubs of one interleaved pair, in the order they run: the first hub first in even repeats,
    second in odd ones, so neither always meets the machine as the other left it."""
    return list(hubs) if repeat % 2 == 0 else list(reversed(hubs))


class HostCpuTrace:
    """The whole host's busy CPU seconds (/proc/stat), sampled every `interval` s in a thread: what a
    surge cost all in (the hub, Docker, the servers and kernels, this benchmark's own clients)."""

    def __init__(self, interval: float = 0.2) -> None:
        self.interval = interval
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            busy, _ = cpu_times() or (0, 0)
            self.samples.append((time.monotonic(), busy / os.sysconf("SC_CLK_TCK")))
            self._stop.wait(self.interval)

    def __enter__(self) -> HostCpuTrace:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _at(self, moment: float) -> float:
        return min(self.samples, key=lambda sample: abs(sample[0] - moment))[1]

    def busy_between(self, start: float, end: float) -> float:
        """Busy CPU seconds from `start` to `end` (time.monotonic()), from the nearest samples."""
        return self._at(end) - self._at(start)

    def busy_cores(self, start: float, end: float, step: float = 1.0) -> list[float]:
        """Cores busy in each `step` seconds from `start` to `end` (the last part step may be shorter)."""
        cores = []
        moment = start
        while moment < end - 1e-9:
            upto = min(moment + step, end)
            cores.append(round(self.busy_between(moment, upto) / (upto - moment), 2))
            moment = upto
        return cores


def saturated_seconds(busy_cores: list[float], cores: int, step: float = 1.0, slack: float = 0.1) -> float:
    """Seconds of a per-step busy-cores series with every core busy (within `slack` of a core)."""
    return round(step * sum(1 for busy in busy_cores if busy >= cores - slack), 1)
