"""Hot spares without a hub: the pool's decisions (refill one at a time, after the rush, at a
bounded pace; culled at workshop.end), spares taken at a first login as seats are, a returning
learner kept on their own volume, and spares counted against the host's capacity."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from dlworkshop.capacity import HostFacts, check_capacity
from dlworkshop.errors import ConfigError
from dlworkshop.settings import parse_bytes, parse_settings
from hub.auth import SharedCodeAuthenticator
from hub.backends.gpu_allocator import GpuAllocator, GpuPoolExhausted
from hub.seats import SeatBook
from hub.spares import SparePool, keep_spares, read_spares, write_spares

START = datetime(2026, 12, 1, 9, 0)
END = datetime(2026, 12, 1, 17, 0)
WINDOW = "workshop: {start: 2026-12-01T09:00:00, end: 2026-12-01T17:00:00}\n"
SHARED = "auth: {mode: shared-code, access_code: open-sesame}\nlearners: {count: 4}\n"


def pool(spares: int = 2, seats: int = 0, named: list[str] | None = None) -> SparePool:
    return SparePool(
        spares=spares,
        seats=[f"seat-{i:02d}" for i in range(1, seats + 1)],
        begin=START - timedelta(minutes=20),
        end=END,
        refill_seconds=30,
        named=list(named or []),
    )


READY = {"ready": True, "pending": None}
STARTING = {"ready": False, "pending": "spawn"}
AT_TEN = datetime(2026, 12, 1, 10, 0)


# ---- the pool's decisions -----------------------------------------------------------------------


def test_spares_are_numbered_after_the_seats_and_started_one_at_a_time() -> None:
    spares = pool(spares=2, seats=3, named=[])
    taken = {"seat-01", "seat-02", "seat-03"}  # the room at 09:00 took every seat
    assert spares.decide(AT_TEN, {}, taken, None).start == "seat-04"
    spares.named.append("seat-04")
    # seat-04 is starting: the next waits for it, whatever the pace allows.
    waiting = spares.decide(AT_TEN, {"seat-04": STARTING}, taken, 300)
    assert waiting.start is None and "one at a time" in waiting.why
    assert spares.decide(AT_TEN, {"seat-04": READY}, taken, 300).start == "seat-05"


def test_free_seats_count_as_spares_and_nothing_starts_while_enough_are_ready() -> None:
    spares = pool(spares=2, seats=3)
    servers = {"seat-01": READY, "seat-02": READY, "seat-03": READY}
    assert spares.decide(AT_TEN, servers, {"seat-01"}, None).start is None  # two seats free and ready
    assert spares.decide(AT_TEN, servers, {"seat-01", "seat-02"}, None).start == "seat-04"


def test_refills_wait_for_the_rush_and_keep_their_pace() -> None:
    spares = pool(spares=1)
    rush = {"ada": STARTING, "bo": READY}  # a learner's start is pending (queued or starting)
    held = spares.decide(AT_TEN, rush, {"ada", "bo"}, None)
    assert held.start is None and "learners' starts first" in held.why
    after_rush = {"ada": READY, "bo": READY}
    assert spares.decide(AT_TEN, after_rush, {"ada", "bo"}, 10).start is None  # 10 s < refill_seconds
    assert spares.decide(AT_TEN, after_rush, {"ada", "bo"}, 30).start == "seat-01"


def test_a_spare_whose_server_went_is_started_again_under_its_name() -> None:
    """Culled idle, or a start that failed: the same seat again, not a new name each time."""
    spares = pool(spares=1, named=["seat-01", "seat-02"])
    assert spares.decide(AT_TEN, {}, {"seat-01"}, None).start == "seat-02"


def test_nothing_before_prewarm_time_and_unclaimed_ones_culled_at_the_end() -> None:
    spares = pool(spares=2, seats=2, named=["seat-03"])
    early = spares.decide(START - timedelta(hours=1), {}, set(), None)
    assert early.start is None and not early.ended
    servers = {"seat-01": READY, "seat-02": READY, "seat-03": STARTING, "ada": READY}
    end = spares.decide(END, servers, {"seat-01"}, None)
    # Only servers nobody took: seat-01 is a learner's, ada started under her own name.
    assert end.ended and end.stop == ("seat-02", "seat-03") and end.start is None


# ---- spares at login --------------------------------------------------------------------------


def test_a_first_login_takes_a_ready_spare_and_a_returning_learner_keeps_their_own(tmp_path: Path) -> None:
    book = SeatBook(tmp_path / "seats.json", 0)
    ready = {"seat-01": True, "seat-02": False}
    # ada comes while no spare is ready: her own name, her own volume.
    assert book.claim("ada", lambda s: False, ["seat-01", "seat-02"]) == "ada"
    # bo is first-time and finds seat-01 ready: its volume becomes his.
    assert book.claim("bo", ready.__getitem__, ["seat-01", "seat-02"]) == "seat-01"
    # ada comes back with seat-02 ready now: she keeps her own volume, the spare stays free.
    ready["seat-02"] = True
    assert book.claim("ada", ready.__getitem__, ["seat-01", "seat-02"]) == "ada"
    assert SeatBook(tmp_path / "seats.json", 0).claim("ada", ready.__getitem__, ["seat-02"]) == "ada"
    assert json.loads((tmp_path / "seats.json").read_text()) == {"ada": "ada", "bo": "seat-01"}


def test_the_authenticator_hands_out_the_spares_the_pool_named(tmp_path: Path) -> None:
    write_spares(tmp_path / "spares.json", ["seat-01"])
    assert read_spares(tmp_path / "spares.json") == ["seat-01"]
    auth = SharedCodeAuthenticator(
        access_code="open-sesame",
        claims_file=str(tmp_path / "claims.json"),
        seats_file=str(tmp_path / "seats.json"),
        spares_file=str(tmp_path / "spares.json"),
        seats=0,
    )
    running = SimpleNamespace(spawner=SimpleNamespace(ready=True))
    room = SimpleNamespace(request=SimpleNamespace(remote_ip="10.0.0.9"), find_user={"seat-01": running}.get)

    def login(name: str) -> Any:
        form = {"username": name, "password": "open-sesame", "secret": f"{name}-secret"}
        return asyncio.run(auth.authenticate(room, form))

    assert login("dana") == {"name": "seat-01", "auth_state": {"display_name": "dana"}}
    assert login("erin")["name"] == "erin"  # the only spare is taken: an ordinary start


# ---- the pool in the hub's prewarm service ----------------------------------------------------


class FakeHub:
    """The hub's API as the pool uses it: starts become ready at the next look."""

    def __init__(self, running: dict[str, dict[str, Any]] | None = None) -> None:
        self.servers = dict(running or {})
        self.started: list[str] = []
        self.stopped: list[str] = []

    def request(self, method: str, path: str) -> Any:
        page = [{"name": n, "servers": {"": dict(s)}} for n, s in self.servers.items()]
        for name, server in self.servers.items():
            if server["pending"] == "spawn":
                self.servers[name] = dict(READY)
        return SimpleNamespace(json=lambda: page)

    def server(self, name: str, create_user: bool = False) -> None:
        return None

    def start(self, name: str) -> bool:
        self.started.append(name)
        self.servers[name] = dict(STARTING)
        return True

    def stop(self, name: str, wait: float | None = 120) -> None:
        self.stopped.append(name)
        self.servers.pop(name, None)


def test_the_service_keeps_the_pool_until_the_end_then_stops_what_nobody_took(tmp_path: Path) -> None:
    settings = parse_settings(SHARED + WINDOW + "prewarm: {seats: 0, spares: 2, refill_seconds: 30}\n")
    hub = FakeHub({"ada": READY})
    clock = {"at": datetime(2026, 12, 1, 9, 30), "monotonic": 0.0}

    def sleep(seconds: float) -> None:
        clock["monotonic"] += seconds
        clock["at"] += timedelta(seconds=seconds)
        if clock["monotonic"] == 60:  # a learner takes seat-01
            (tmp_path / "seats.json").write_text(json.dumps({"bo": "seat-01"}))
        if clock["monotonic"] == 120:
            clock["at"] = END  # the window ends

    keep_spares(
        hub,  # type: ignore[arg-type]
        settings,
        tmp_path,
        say=lambda _: None,
        now=lambda: clock["at"],
        clock=lambda: clock["monotonic"],
        sleep=sleep,
    )
    # Two spares, 30 s apart; a third after bo took seat-01; the free ones stopped at the end.
    assert hub.started == ["seat-01", "seat-02", "seat-03"]
    assert read_spares(tmp_path / "spares.json") == ["seat-01", "seat-02", "seat-03"]
    assert sorted(hub.stopped) == ["seat-02", "seat-03"] and set(hub.servers) == {"ada", "seat-01"}


# ---- settings and capacity --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("yaml", "said"),
    [
        (SHARED + "prewarm: {spares: 2}\n", "set workshop.start and workshop.end"),
        (
            "auth: {mode: shared-code, access_code: x}\nlearners: {names: [ada, bo]}\n"
            + WINDOW
            + "prewarm: {spares: 2}\n",
            "shared-code mode",
        ),
    ],
)
def test_spares_need_seats_and_a_window(yaml: str, said: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_settings(yaml)
    assert any("prewarm.spares" in p and said in p for p in refused.value.problems), refused.value.problems


def test_spares_count_against_memory_and_gpu_places() -> None:
    host = HostFacts(cpus=16, memory=parse_bytes("12G"), gpus=2)
    gpu = "resources: {memory: 2G, gpu: {policy: shared, per_learner: 1/2}}\n"
    fits = check_capacity(parse_settings(SHARED + WINDOW + gpu), host)
    assert not fits.problems and fits.carries == 4
    report = check_capacity(parse_settings(SHARED + WINDOW + gpu + "prewarm: {spares: 2}\n"), host)
    assert report.servers == "4 learners at once + 2 spares"
    assert {d.resource: d.shown_needed for d in report.demands}["gpu"] == "6 GPU places"
    assert any(
        p.startswith("resources.memory: all 4 learners and 2 spares (prewarm.spares) need 12G + 1G hub")
        and "lower prewarm.spares" in p
        for p in report.problems
    ), report.problems
    assert any(p.startswith("resources.gpu:") for p in report.problems), report.problems


def test_a_spare_holding_a_gpu_holds_its_place() -> None:
    """Spares start through the spawner like anyone: the allocator counts them, and a learner who
    takes one keeps its share (the JupyterHub user stays the seat)."""
    allocator = GpuAllocator.from_settings(
        parse_settings(SHARED + "resources: {gpu: {policy: whole, devices: [gpu-0, gpu-1]}}\n").resources.gpu
    )
    allocator.allocate("seat-01")  # a spare, ready for whoever comes
    allocator.allocate("ada")
    with pytest.raises(GpuPoolExhausted):
        allocator.allocate("bo")
    assert allocator.allocate("seat-01").device_ids == allocator.assignments["seat-01"].device_ids


def test_clusters_refuse_spares() -> None:
    with pytest.raises(ConfigError) as refused:
        parse_settings(
            SHARED + WINDOW + "hub: {backend: kubernetes}\nimage: {source: pull}\nprewarm: {spares: 1}\n"
        )
    assert any("userPlaceholder" in p for p in refused.value.problems), refused.value.problems


def test_check_shows_the_spares_and_refuses_them_where_they_do_not_fit(tmp_path: Path) -> None:
    config = tmp_path / "workshop.yaml"
    config.write_text(SHARED + WINDOW + "resources: {cpu: 1, memory: 2G}\nprewarm: {spares: 2}\n")

    def check(memory: str) -> subprocess.CompletedProcess[str]:
        host = ["--host-cpus", "16", "--host-memory", memory, "--host-gpus", "0"]
        command = [sys.executable, "-m", "dlworkshop", "check", "-c", str(config), *host]
        return subprocess.run(command, capture_output=True, text=True, timeout=60)

    fits = check("16G")
    assert fits.returncode == 0, fits.stdout + fits.stderr
    assert "needed (4 learners at once + 2 spares)" in fits.stdout
    assert "12G + 1G hub" in fits.stdout and "this host carries 5 learners at once" in fits.stdout
    refused = check("12G")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert (
        "all 4 learners and 2 spares (prewarm.spares) need 12G + 1G hub, the host has 12G" in refused.stderr
    )
    assert "lower prewarm.spares" in refused.stderr
