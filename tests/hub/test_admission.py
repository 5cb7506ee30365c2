"""The hub's admission queue: first come first admitted, a bounded number starting at once,
places shown, waiting never failed, cancellations give the place back."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from traitlets.config import Config

from dlworkshop.capacity import START_CPU_SECONDS, START_WAIT_SECONDS, host_start_capacity, start_capacity
from dlworkshop.settings import parse_settings
from hub.admission import AdmissionQueue, HostAdmission, HostCpu, StartCosts
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
    [(2, 20 * GiB, 4), (16, 120 * GiB, 30), (64, 4 * GiB, 8), (1, 100 * 2**20, 1)],
)
def test_host_start_capacity_follows_cores_and_memory(cpus: float, memory: int, capacity: int) -> None:
    """Before any start is measured: 1.2 CPU-s and 1 s of waiting each, free cores x 2.2 / 1.2."""
    assert host_start_capacity(cpus, memory) == capacity


def test_busy_cores_and_the_cost_of_a_start_decide_how_many_start_at_once() -> None:
    idle = host_start_capacity(2, 20 * GiB, busy_cores=0, cpu_seconds=1.0, wait_seconds=1.0)
    assert idle == 4  # 2 free cores, each start half on a core, half waiting
    assert host_start_capacity(2, 20 * GiB, busy_cores=1, cpu_seconds=1.0, wait_seconds=1.0) == 2
    assert host_start_capacity(2, 20 * GiB, busy_cores=0, cpu_seconds=2.0, wait_seconds=0.0) == 2
    # A host busy with something else: half its cores count as free (CPU time is shared by process).
    assert host_start_capacity(2, 20 * GiB, busy_cores=8, cpu_seconds=1.0, wait_seconds=0.0) == 1
    assert host_start_capacity(2, 20 * GiB, busy_cores=8, cpu_seconds=1.0, wait_seconds=1.0) == 2


def test_start_costs_follow_the_measured_starts() -> None:
    costs = StartCosts()
    costs.record(3.0, None)  # the engine said nothing: the defaults stay
    assert (costs.cpu_seconds, costs.wait_seconds) == (START_CPU_SECONDS, START_WAIT_SECONDS)
    for wall, cpu in [(2.0, 0.8), (6.0, 1.0), (2.5, 0.9)]:  # the second one slowed by its neighbours
        costs.record(wall, cpu)
    assert costs.cpu_seconds == pytest.approx(0.9)
    assert costs.wait_seconds == pytest.approx(1.2)


def test_busy_cores_are_read_from_proc_stat(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    #                    user nice system idle iowait irq softirq steal
    stat.write_text("cpu  100 0 100 800 0 0 0 0 0 0\ncpu0 ...\n")
    host = HostCpu(stat, cores=2)
    stat.write_text("cpu  250 0 150 1000 0 0 0 0 0 0\n")  # 200 busy of 400 jiffies
    assert host.busy_cores() == pytest.approx(1.0)
    assert host.busy_cores() is None  # nothing new since


def test_a_burst_is_admitted_by_the_cores_free_when_it_begins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hub import admission

    monkeypatch.setattr(admission.os, "getloadavg", lambda: (1.0, 0.0, 0.0))
    stat = tmp_path / "stat"
    stat.write_text("cpu  0 0 0 0 0 0 0 0\n")
    host = HostAdmission(2, lambda: 20 * GiB, HostCpu(stat, cores=2), min_interval=0)
    assert host.busy_cores == 1.0  # before any reading: the load average
    stat.write_text("cpu  0 0 0 400 0 0 0 0\n")  # idle
    assert host.capacity() == 4
    stat.write_text("cpu  50 0 0 550 0 0 0 0\n")  # 0.5 of 2 cores busy since
    assert host.capacity() == 3
    host.max_age = 0  # a reading over a long quiet time: the load average instead
    stat.write_text("cpu  50 0 0 950 0 0 0 0\n")
    assert host.capacity() == 2 and host.busy_cores == 1.0


def test_a_grown_capacity_admits_those_waiting() -> None:
    async def scenario() -> list[int | None]:
        queue = AdmissionQueue(1)
        release = asyncio.Event()
        log: list[str] = []
        tasks = [asyncio.create_task(arrive(queue, name, log, release)) for name in ("ada", "bo", "cy")]
        await asyncio.sleep(0)
        queue.resize(3)
        places = [queue.place(name) for name in ("ada", "bo", "cy")]
        release.set()
        await asyncio.gather(*tasks)
        return places

    assert asyncio.run(scenario()) == [0, 0, 0]


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
    from hub import admission, spawning

    monkeypatch.setattr(WorkshopSpawner, "_admission", None)
    monkeypatch.setattr(WorkshopSpawner, "_host_admission", None)
    monkeypatch.setattr(WorkshopSpawner, "_start_costs", StartCosts())
    monkeypatch.setattr(spawning.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(spawning, "available_memory", lambda: 20 * GiB)
    monkeypatch.setattr(admission.os, "getloadavg", lambda: (0.0, 0.0, 0.0))  # an idle host
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


def spawner_measuring(monkeypatch: pytest.MonkeyPatch, readings: list[float], capacity: int = 0) -> Any:
    """A spawner whose engine reads the server's CPU from `readings`, in turn; its learner cost
    window 0 s (the reading after the answer comes at once)."""
    from hub import admission

    monkeypatch.setattr(WorkshopSpawner, "_admission", None)
    monkeypatch.setattr(WorkshopSpawner, "_host_admission", None)
    monkeypatch.setattr(WorkshopSpawner, "_start_costs", StartCosts())
    monkeypatch.setattr(WorkshopSpawner, "_fitted_costs", None)
    monkeypatch.setattr(admission.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    c = Config()
    DockerBackend(parse_settings(BASE)).configure(c)
    c.WorkshopSpawner.start_capacity = capacity
    c.WorkshopSpawner.learner_cost_window = 0.0
    spawner = WorkshopDockerSpawner(config=c, user=SimpleNamespace(name="ada", id=1, url="/user/ada/"))
    served = iter(readings)

    async def measured() -> float:
        return next(served)

    monkeypatch.setattr(spawner, "server_cpu_seconds", measured)
    return spawner


async def record_starts(spawner: Any, walls: list[float]) -> None:
    """Starts that took `walls` seconds each, each followed by its reading after the answer."""
    for wall in walls:
        await spawner._record_cost(wall)
        await asyncio.gather(*WorkshopSpawner._background)


def test_each_learner_is_measured_phase_by_phase_and_several_decide(monkeypatch: pytest.MonkeyPatch) -> None:
    # Server CPU when it answered, then 20 s later (its first kernel and cell), for three learners.
    spawner = spawner_measuring(monkeypatch, [0.7, 1.1, 0.8, 1.3, 0.6, 0.9])
    assert spawner.admission.capacity >= 1
    costs = WorkshopSpawner._host_admission.costs  # type: ignore[union-attr]

    async def scenario() -> list[tuple[float, float, float]]:
        seen = []
        for wall in (2.0, 2.5, 1.5):
            await record_starts(spawner, [wall])
            seen.append((costs.cpu_seconds, costs.wait_seconds, costs.after_seconds))
        return seen

    first, second, third = asyncio.run(scenario())
    # One or two samples are no measure: the defaults stand until three.
    assert first == second == (START_CPU_SECONDS, START_WAIT_SECONDS, 0.0)
    assert third == (0.7, pytest.approx(0.9), pytest.approx(0.4))
    assert costs.settled


def test_a_server_stopped_or_replaced_before_its_second_reading_is_not_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The reading after the answer is of the same server or none: a server stopped within the
    window (its spawner forgets the container) once read as the CPU of every container together."""
    spawner = spawner_measuring(monkeypatch, [0.7, 0.7, 0.7, 1.3])  # read only for the same server
    assert spawner.admission.capacity >= 1  # the host's admission made
    costs = WorkshopSpawner._host_admission.costs  # type: ignore[union-attr]
    instances = iter(["first", None, "second", "third", "fourth", "fourth"])
    monkeypatch.setattr(spawner, "server_instance", lambda: next(instances))
    asyncio.run(record_starts(spawner, [2.0, 2.0, 2.0]))
    assert len(costs.measured) == 3
    # Stopped, then replaced: not counted; the same server read twice: its 0.6 CPU-s.
    assert list(costs.measured_after) == [pytest.approx(0.6)]


def test_the_capacity_counts_what_a_learner_does_right_after_the_start() -> None:
    # 2 free cores, a start 1 CPU-s + 1 s waiting: 4 at once; with 1 CPU-s more right after, 2.
    assert host_start_capacity(2, 20 * GiB, cpu_seconds=1.0, wait_seconds=1.0, after_seconds=0.0) == 4
    assert host_start_capacity(2, 20 * GiB, cpu_seconds=1.0, wait_seconds=1.0, after_seconds=1.0) == 2


def test_during_a_burst_the_capacity_follows_the_costs_as_they_are_measured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spawner = spawner_measuring(monkeypatch, [1.0, 2.0] * 3)
    queue = spawner.admission
    assert queue.capacity == 4  # the defaults on an idle 2-core host: 2 x 2.2 / 1.2
    host = WorkshopSpawner._host_admission
    assert host is not None
    host.busy_cores = 0.0

    async def scenario() -> int:
        async with queue.admitted("someone/"):  # a burst under way
            await record_starts(spawner, [2.0, 2.0, 2.0])
            spawner._fit_capacity_to_the_host(queue)
            return queue.capacity

    # Measured: 1 CPU-s + 1 s waiting, then 1 CPU-s more: 2 x 2 / 2.
    assert asyncio.run(scenario()) == 2


def test_a_fixed_capacity_hub_still_measures_and_says_what_a_learner_costs(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    spawner = spawner_measuring(monkeypatch, [1.25, 1.65] * 4, capacity=2)
    assert spawner.admission.capacity == 2
    with caplog.at_level("INFO"):
        asyncio.run(record_starts(spawner, [2.0, 3.0, 2.5, 2.0]))
    first = [r.getMessage() for r in caplog.records if "start measured here" in r.getMessage()]
    assert first == ["dlworkshop: a learner server start measured here: 1.25 CPU-s, 0.8 s waiting"]
    said = [r.getMessage() for r in caplog.records if "costs here" in r.getMessage()]
    assert said == [
        "dlworkshop: what a learner costs here, measured: a start 1.25 CPU-s + 0.8 s waiting, then "
        "0.40 CPU-s right after it answers (3 starts, 3 followed)"
    ]


def test_an_admitted_start_that_never_answers_fails_with_the_time_it_had(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Not as a TimeoutError, which JupyterHub would log as the day-long queue bound."""
    from hub.spawning import StartTimedOut

    spawner = spawner_measuring(monkeypatch, [])
    spawner.admitted_start_timeout = 0

    async def never_answers() -> None:
        await asyncio.sleep(3600)

    with pytest.raises(StartTimedOut) as failed:
        asyncio.run(spawner._bounded(never_answers()))
    assert not isinstance(failed.value, TimeoutError)
    assert failed.value.status_code == 504
    assert str(failed.value) == (
        "HTTP 504: Gateway Timeout (ada's server did not answer within 0 s of its start (hub.start_timeout))"
    )
    assert failed.value.jupyterhub_message.startswith("Your server did not start within 0 s.")
