"""The hub's admission queue: first come first admitted, a bounded number starting at once,
places shown, waiting never failed, cancellations give the place back."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from traitlets.config import Config

from dlworkshop.capacity import host_start_capacity, start_capacity
from dlworkshop.settings import parse_settings
from hub.admission import AdmissionQueue
from hub.backends.docker import DockerBackend, WorkshopDockerSpawner
from hub.spawning import WorkshopSpawner

BASE = "auth: {mode: shared-code, access_code: open-sesame}\n"
GiB = 1024**3


async def arrive(queue: AdmissionQueue, name: str, log: list[str], release: asyncio.Event) -> None:
    async with queue.admitted(name):
        log.append(f"start {name}")
        await release.wait()
    log.append(f"done {name}")


def test_capacity_one_admits_three_arrivals_in_order_and_fails_none() -> None:
    async def scenario() -> tuple[list[str], list[int | None]]:
        queue = AdmissionQueue(1)
        log: list[str] = []
        releases = {name: asyncio.Event() for name in ("ada", "bo", "cy")}
        tasks = [asyncio.create_task(arrive(queue, n, log, releases[n])) for n in releases]
        await asyncio.sleep(0)
        places = [queue.place(n) for n in releases]
        for name in releases:
            releases[name].set()
            await asyncio.sleep(0.01)
        await asyncio.gather(*tasks)
        return log, places

    log, places = asyncio.run(scenario())
    assert places == [0, 1, 2]  # ada starting, bo first in line, cy second
    assert log == ["start ada", "done ada", "start bo", "done bo", "start cy", "done cy"]


def test_never_more_than_capacity_start_at_once() -> None:
    async def scenario() -> int:
        queue = AdmissionQueue(3)
        running = peak = 0

        async def learner(name: str) -> None:
            nonlocal running, peak
            async with queue.admitted(name):
                running += 1
                peak = max(peak, running)
                await asyncio.sleep(0.001)
                running -= 1

        await asyncio.gather(*(learner(f"l{i}") for i in range(30)))
        assert not queue.starting and not queue.waiting
        return peak

    assert asyncio.run(scenario()) == 3


def test_a_cancelled_wait_gives_its_place_to_the_next() -> None:
    async def scenario() -> list[str]:
        queue = AdmissionQueue(1)
        log: list[str] = []
        first, never, last = asyncio.Event(), asyncio.Event(), asyncio.Event()
        holder = asyncio.create_task(arrive(queue, "holder", log, first))
        quitter = asyncio.create_task(arrive(queue, "quitter", log, never))
        patient = asyncio.create_task(arrive(queue, "patient", log, last))
        await asyncio.sleep(0)
        quitter.cancel()
        await asyncio.sleep(0)
        assert queue.place("patient") == 1
        first.set()
        last.set()
        await asyncio.gather(holder, patient)
        return log

    assert asyncio.run(scenario()) == ["start holder", "done holder", "start patient", "done patient"]


def test_a_failed_start_frees_its_place() -> None:
    async def scenario() -> None:
        queue = AdmissionQueue(1)
        with pytest.raises(RuntimeError):
            async with queue.admitted("broken"):
                raise RuntimeError("container failed")
        assert not queue.starting
        async with queue.admitted("next"):
            assert queue.place("next") == 0

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("cpus", "memory", "capacity"),
    [(2, 20 * GiB, 4), (16, 120 * GiB, 32), (64, 4 * GiB, 8), (1, 100 * 2**20, 1)],
)
def test_host_start_capacity_follows_cores_and_memory(cpus: float, memory: int, capacity: int) -> None:
    assert host_start_capacity(cpus, memory) == capacity


def test_workshop_yaml_overrides_the_start_capacity() -> None:
    assert start_capacity(parse_settings(BASE + "hub: {start_capacity: 1}\n"), 16, 64 * GiB) == 1
    assert start_capacity(parse_settings(BASE), 2, 20 * GiB) == 4


def test_queued_time_never_times_a_start_out(monkeypatch: pytest.MonkeyPatch) -> None:
    c = Config()
    settings = parse_settings(BASE + "hub: {start_timeout: 120, start_capacity: 3}\n")
    DockerBackend(settings).configure(c)
    assert c.Spawner.start_timeout >= 24 * 3600
    assert c.WorkshopSpawner.admitted_start_timeout == 120
    assert c.JupyterHub.concurrent_spawn_limit == 0
    # The spawners build the hub's one queue at the first start, with the configured capacity.
    monkeypatch.setattr(WorkshopSpawner, "_admission", None)
    spawner = WorkshopDockerSpawner(config=c, user=SimpleNamespace(name="ada", id=1, url="/user/ada/"))
    other = WorkshopDockerSpawner(config=c, user=SimpleNamespace(name="bo", id=2, url="/user/bo/"))
    assert spawner.admitted_start_timeout == 120
    assert spawner.admission.capacity == 3 and other.admission is spawner.admission


def test_auto_capacity_comes_from_the_host_at_the_first_start(monkeypatch: pytest.MonkeyPatch) -> None:
    from hub import spawning

    monkeypatch.setattr(WorkshopSpawner, "_admission", None)
    monkeypatch.setattr(spawning.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(spawning, "available_memory", lambda: 20 * GiB)
    c = Config()
    DockerBackend(parse_settings(BASE)).configure(c)
    assert c.WorkshopSpawner.start_capacity == 0  # auto
    spawner = WorkshopDockerSpawner(config=c, user=SimpleNamespace(name="ada", id=1, url="/user/ada/"))
    assert spawner.admission.capacity == 4


def test_check_advises_prewarm_when_the_room_outnumbers_the_start_capacity() -> None:
    from dlworkshop.capacity import HostFacts, check_capacity

    host = HostFacts(cpus=2, memory=24 * GiB, gpus=0)
    room = check_capacity(
        parse_settings(BASE + "learners: {count: 30}\nresources: {cpu: 0.05, memory: 512M}\n"), host
    )
    assert room.start_capacity == 4
    assert any("start 4 at a time" in warning and "workshop.start" in warning for warning in room.warnings)
    planned = check_capacity(
        parse_settings(
            BASE
            + "learners: {count: 30}\nresources: {cpu: 0.05, memory: 512M}\nworkshop: {start: 2026-12-01T09:00:00}\n"
        ),
        host,
    )
    assert not any("at a time" in warning for warning in planned.warnings)


def test_the_spawn_page_shows_the_place_in_the_queue_then_the_start() -> None:
    async def scenario() -> list[dict | None]:  # type: ignore[type-arg]
        queue = AdmissionQueue(1)
        holder_done = asyncio.Event()

        async def holder() -> None:
            async with queue.admitted("ada/"):
                await holder_done.wait()

        task = asyncio.create_task(holder())
        await asyncio.sleep(0)
        waiting = asyncio.create_task(queue.admitted("bo/").__aenter__())
        await asyncio.sleep(0)
        bo = SimpleNamespace(
            phase="queued", admission=queue, admission_key="bo/", engine_message=lambda: None, resumed=False
        )
        events = [WorkshopSpawner._progress_event(bo)]  # type: ignore[arg-type]
        holder_done.set()
        await task
        await waiting
        bo.phase = "starting"
        events.append(WorkshopSpawner._progress_event(bo))  # type: ignore[arg-type]
        return events

    queued, starting = asyncio.run(scenario())
    assert queued is not None and "you are number 1 in the queue (1 server starting now)" in queued["message"]
    assert starting is not None and "starting your server" in starting["message"]


def test_places_kept_after_a_restart_go_in_the_order_asked_whoever_arrives_first() -> None:
    async def scenario() -> list[str]:
        queue = AdmissionQueue(1)
        log: list[str] = []
        queue.reserve("bo", requested=200.0)  # the restarted hub's check finds bo first
        queue.reserve("ada", requested=100.0)
        releases = {name: asyncio.Event() for name in ("newcomer", "bo", "ada")}
        for event in releases.values():
            event.set()
        newcomer = asyncio.create_task(arrive(queue, "newcomer", log, releases["newcomer"]))
        await asyncio.sleep(0)
        assert [queue.place(k) for k in ("ada", "bo", "newcomer")] == [0, 1, 2]  # ada's place, held
        assert queue.requested("bo") == 200.0 and queue.requested("newcomer") is None
        await asyncio.gather(
            arrive(queue, "bo", log, releases["bo"]), arrive(queue, "ada", log, releases["ada"]), newcomer
        )
        return log

    assert asyncio.run(scenario())[::2] == ["start ada", "start bo", "start newcomer"]


def test_a_kept_place_nobody_takes_goes_to_the_next() -> None:
    async def scenario() -> list[str]:
        queue = AdmissionQueue(1)
        log: list[str] = []
        queue.reserve("gone", requested=100.0, hold_for=0.05)
        done = asyncio.Event()
        done.set()
        await arrive(queue, "later", log, done)
        assert not queue.reserved and not queue.waiting and not queue.starting
        return log

    assert asyncio.run(scenario()) == ["start later", "done later"]
