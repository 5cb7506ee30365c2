"""The kernel started ahead waits while its CPU is needed elsewhere (dlworkshop_learner/kernel_ahead.py),
and the hub's route it asks how many starts are queued."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from dlworkshop_learner import layout
from dlworkshop_learner.host_cpu import HostCpu
from dlworkshop_learner.kernel_ahead import AheadGate, hub_queue_reader


class Stat:
    """A fake /proc/stat whose busy and idle jiffies a test moves on."""

    def __init__(self, folder: Path) -> None:
        self.path, self.busy, self.idle = folder / "stat", 0, 0
        self._write()

    def _write(self) -> None:
        self.path.write_text(f"cpu  {self.busy} 0 0 {self.idle} 0 0 0 0\n")

    def advance(self, busy: int, idle: int) -> None:
        self.busy += busy
        self.idle += idle
        self._write()


def gate(stat: Stat, queued: int | None = 0) -> tuple[AheadGate, list[int]]:
    asked: list[int] = []

    async def queued_starts() -> int | None:
        asked.append(1)
        return queued

    return AheadGate(queued_starts, HostCpu(stat.path, cores=2)), asked


def test_a_quiet_host_with_no_starts_queued_starts_the_kernel_ahead(tmp_path: Path) -> None:
    stat = Stat(tmp_path)
    ahead, asked = gate(stat)
    ahead.look()
    stat.advance(busy=50, idle=350)  # a quarter of the cores busy since the look
    assert asyncio.run(ahead.reason_to_wait(learner_kernels=0)) is None
    assert asked == [1]


def test_never_a_second_kernel_beside_the_one_the_learner_took(tmp_path: Path) -> None:
    stat = Stat(tmp_path)
    ahead, asked = gate(stat)
    stat.advance(busy=0, idle=400)
    assert asyncio.run(ahead.reason_to_wait(learner_kernels=1)) == "the learner has a kernel running"
    assert asked == []  # nothing else looked at, the hub not asked


def test_a_saturated_host_waits(tmp_path: Path) -> None:
    stat = Stat(tmp_path)
    ahead, asked = gate(stat)
    ahead.look()
    stat.advance(busy=380, idle=20)  # 1.9 of 2 cores busy: the rush
    assert asyncio.run(ahead.reason_to_wait(0)) == "the host is busy (1.9 of 2 cores)"
    assert asked == []
    stat.advance(busy=100, idle=300)  # then quiet again
    assert asyncio.run(ahead.reason_to_wait(0)) is None


def test_starts_queued_at_the_hub_wait(tmp_path: Path) -> None:
    stat = Stat(tmp_path)
    ahead, asked = gate(stat, queued=7)
    stat.advance(busy=10, idle=390)
    assert asyncio.run(ahead.reason_to_wait(0)) == "7 learner server starts are queued at the hub"
    assert asked == [1]


def test_a_hub_that_says_nothing_of_its_queue_does_not_hold_the_kernel_back(tmp_path: Path) -> None:
    stat = Stat(tmp_path)
    ahead, _ = gate(stat, queued=None)
    stat.advance(busy=10, idle=390)
    assert asyncio.run(ahead.reason_to_wait(0)) is None


def test_the_hub_is_asked_with_the_servers_own_token(monkeypatch: pytest.MonkeyPatch) -> None:
    from tornado import httpclient

    requests: list[tuple[str, dict[str, str]]] = []
    answers = iter([(200, b'{"queued": 3, "starting": 2}'), (404, b""), (200, b"not json")])

    class FakeClient:
        async def fetch(self, url: str, headers: dict[str, str], **_: Any) -> Any:
            requests.append((url, headers))
            code, body = next(answers)
            return SimpleNamespace(code=code, body=body)

    monkeypatch.setattr(httpclient, "AsyncHTTPClient", FakeClient)
    queued = hub_queue_reader(
        {"JUPYTERHUB_API_URL": "http://hub:8081/hub/api/", "JUPYTERHUB_API_TOKEN": "server-token"}
    )
    assert [asyncio.run(queued()) for _ in range(3)] == [3, None, None]
    assert requests[0] == (
        f"http://hub:8081/hub/api/{layout.HUB_STARTS_API}",
        {"Authorization": "token server-token"},
    )
    assert asyncio.run(hub_queue_reader({})()) is None  # not started by a hub: nobody to ask


def test_the_hubs_route_counts_queued_and_starting(monkeypatch: pytest.MonkeyPatch) -> None:
    """GET /hub/api/room/starts: two counts, for any token the hub knows."""
    from tornado import web

    from hub.admission import AdmissionQueue
    from hub.room import handlers
    from hub.spawning import WorkshopSpawner

    assert any(route == f"/api/{layout.HUB_STARTS_API}" for route, *_ in handlers(SimpleNamespace()))  # type: ignore[arg-type]

    async def scenario() -> list[Any]:
        queue = AdmissionQueue(1)
        monkeypatch.setattr(WorkshopSpawner, "_admission", queue)
        async with queue.admitted("ada/"):
            waiting = [asyncio.ensure_future(_admitted(queue, name)) for name in ("bo/", "cy/")]
            await asyncio.sleep(0)
            said = [_answer(user="someone"), _answer(user=None)]
            for task in waiting:
                task.cancel()
            return said

    answered, refused = asyncio.run(scenario())
    assert json.loads(answered) == {"queued": 2, "starting": 1}
    assert isinstance(refused, web.HTTPError) and refused.status_code == 403


async def _admitted(queue: Any, key: str) -> None:
    async with queue.admitted(key):
        await asyncio.sleep(3600)


def _answer(user: Any) -> Any:
    from hub.room import StartsHandler

    class Asked(StartsHandler):  # the request's user, without a hub behind it
        current_user = user

    handler = Asked.__new__(Asked)
    written: list[str] = []
    handler.finish = written.append  # type: ignore[method-assign,assignment]
    try:
        handler.get()
    except Exception as exc:
        return exc
    return written[0]
