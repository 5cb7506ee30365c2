"""benchmarks/surge.py's bookkeeping and benchmarks/surge_report.py (no hub is started): the median of the runs' p95s, and the
README table written from a results file, both hubs side by side, with the date and the machine."""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType

import pytest

from tests.package.benchmark_scripts import MACHINE, load_benchmark


def surge_module() -> ModuleType:
    return load_benchmark("surge.py", "surge_benchmark")


def report_module() -> ModuleType:
    return load_benchmark("surge_report.py", "surge_report")


def run(hub: str, scenario: str, repeat: int, p95: float | None, ran: int = 10) -> dict:  # type: ignore[type-arg]
    return {
        "hub": hub,
        "scenario": scenario,
        "repeat": repeat,
        "p50": None if p95 is None else p95 / 2,
        "p95": p95,
        "ran_code": ran,
        "learners": 10,
        "load_before": [1.5 + repeat, 1.0, 1.0],
    }


def results() -> dict:  # type: ignore[type-arg]
    surge = surge_module()
    runs = [run(surge.OURS_HUB, "10", r, p) for r, p in enumerate([9.0, 7.0, 30.0])]
    runs += [run(surge.PLAIN_HUB, "10", r, p) for r, p in enumerate([20.0, 22.0, 21.0])]
    runs += [run(surge.OURS_HUB, "10", 0, None, ran=0) | {"scenario": "30-cold", "learners": 30}]
    runs += [run(surge.OURS_HUB, "30-cold", 0, 40.0) | {"sweep": "4"}]
    return {
        "started": "20261129T150000Z",
        "machine": MACHINE,
        "ramp_s": 10.0,
        "learner_quota": "1 CPU",
        "repeat": 3,
        "scenarios": ["10", "30-cold"],
        "runs": runs,
        "idle": [{"servers": 30, "seconds": 60, "cores_together": 0.012}],
        "notes": "",
    }


def test_the_summary_is_the_median_of_the_runs_p95s() -> None:
    report = report_module()
    summary = report.summarise(results()["runs"])
    assert summary["10"][report.OURS_HUB]["median_p95"] == 9.0  # one slow run does not decide
    assert summary["10"][report.PLAIN_HUB]["median_p95"] == 21.0
    assert summary["10"][report.OURS_HUB]["ran_code"] == 30
    assert summary["30-cold"][report.OURS_HUB]["median_p95"] is None  # nobody ran code
    assert "sweep" not in str(summary)  # the sweep's runs are reported apart


def test_the_readme_table_comes_from_the_results_file() -> None:
    report = report_module()
    data = results()
    data["summary"] = report.summarise(data["runs"])
    table = report.readme_table(data)
    assert "2026-11-29 15:00 UTC" in table and "surge-20261129T150000Z.json" in table
    assert "2 cores, 24 GiB" in table and "load average before a scenario 1.5 to 3.5" in table
    assert (
        "| 10 learners | 30/30 | 9.0 s (9.0, 7.0, 30.0) | - | 4.5 s | 30/30 | 21.0 s (20.0, 22.0, 21.0) | - | 10.5 s |"
        in table
    )
    assert "| 30 learners, cold | 0/30 | - | - | - | - |  |  |  |" in table
    assert "0.012 of a core together" in table
    assert "| p95 login to first cell | 40.0 s |" in table


def test_the_cold_room_cost_and_the_p95_it_allows_are_said() -> None:
    report = report_module()
    data = results()
    data["runs"] += [
        run(report.OURS_HUB, "30-cold", r, 20.0) | {"learners": 30, "host_cpu_per_learner": cpu}
        for r, cpu in enumerate([2.0, 2.2, 1.9])
    ]
    data["runs"] += [
        run(report.PLAIN_HUB, "30-cold", 0, 25.0) | {"learners": 30, "host_cpu_per_learner": 2.1}
    ]
    data["summary"] = report.summarise(data["runs"])
    assert data["summary"]["30-cold"][report.OURS_HUB]["median_cpu_per_learner"] == 2.0
    table = report.readme_table(data)
    # 30 arriving over 10 s, 1 s of 2 cores each: learner i (from 0) waits 1 + 0.655 i seconds; the
    # p95 lies between the 28th and 29th waits (18.7, 19.3 s).
    assert "2.00 CPU-s on the dlworkshop up hub" in table and "no lower than 19.1 s" in table
    assert "2.10 CPU-s on the plain DockerSpawner hub" in table


def test_the_arrival_order_bound_follows_the_cost() -> None:
    report = report_module()
    # The machine keeps up (a start every 0.5 s, an arrival every 0.34 s): only the last wait long.
    cheap = report.arrival_order_p95(30, 10.0, 1.0, 2)
    dear = report.arrival_order_p95(30, 10.0, 2.0, 2)
    assert cheap < dear
    assert report.arrival_order_p95(10, 10.0, 1.0, 2) == pytest.approx(0.5)  # 1.1 s apart: nobody waits


def test_the_plot_marks_the_cold_rooms_cpu_bound(tmp_path: Path) -> None:
    report = report_module()
    data = results()
    data["runs"] += [run(report.OURS_HUB, "30-cold", 0, 20.0) | {"learners": 30, "host_cpu_per_learner": 1.9}]
    data["summary"] = report.summarise(data["runs"])
    report.plot(data, tmp_path / "surge.png")
    assert (tmp_path / "surge.png").read_bytes().startswith(b"\x89PNG")


def test_the_host_cpu_of_a_window_comes_from_the_samples_nearest_its_ends() -> None:
    surge = surge_module()
    trace = surge.HostCpuTrace()
    trace.samples = [(0.0, 100.0), (0.2, 100.3), (0.4, 100.7), (0.6, 101.0)]
    assert trace.busy_between(0.19, 0.58) == pytest.approx(0.7)
    with surge.HostCpuTrace(interval=0.01) as live:
        sum(range(2_000_000))  # some CPU on this host
    assert len(live.samples) >= 1 and live.samples[-1][1] >= live.samples[0][1] > 0


def host_trace_module() -> ModuleType:
    return load_benchmark("host_trace.py", "host_trace")


def test_a_run_waits_for_a_quiet_machine_and_says_how_long() -> None:
    trace = host_trace_module()
    loads = iter([(2.5, 1, 1), (1.1, 1, 1), (0.7, 1, 1)])
    clock = iter([0.0, 0.0, 5.0, 10.0])
    slept: list[float] = []
    calm = trace.wait_for_quiet(
        0.8, 900, load=lambda: next(loads), sleep=slept.append, clock=lambda: next(clock)
    )
    assert calm == {"load_before": [0.7, 1, 1], "waited_s": 10.0, "quiet": True}
    assert slept == [5.0, 5.0]
    never = trace.wait_for_quiet(0.8, 0, load=lambda: (3.0, 1, 1), sleep=slept.append)
    assert never["quiet"] is False  # it runs anyway, and the results file says so


def test_the_hubs_take_turns_going_first() -> None:
    trace = host_trace_module()
    hubs = ["ours", "plain"]
    assert [trace.pair_order(repeat, hubs)[0] for repeat in range(3)] == ["ours", "plain", "ours"]
    assert trace.pair_order(1, ["ours"]) == ["ours"]


def test_busy_cores_second_by_second_and_the_saturated_seconds() -> None:
    trace = host_trace_module()
    host = trace.HostCpuTrace()
    host.samples = [(0.0, 0.0), (1.0, 2.0), (2.0, 3.95), (3.0, 4.45)]
    busy = host.busy_cores(0.0, 3.0)
    assert busy == [2.0, 1.95, 0.5]
    assert trace.saturated_seconds(busy, cores=2) == 2.0


def test_each_run_has_its_cpu_bound_and_the_pairs_are_compared() -> None:
    report = report_module()
    data = results()
    for repeat, (ours, plain) in enumerate([(24.0, 25.0), (26.0, 24.0), (20.0, 25.0)]):
        data["runs"] += [
            run(report.OURS_HUB, "30-cold", repeat, ours)
            | {"learners": 30, "cpu_bound_p95": 17.0 + repeat, "first": repeat % 2 == 0},
            run(report.PLAIN_HUB, "30-cold", repeat, plain)
            | {"learners": 30, "cpu_bound_p95": 18.0, "first": repeat % 2 == 1},
        ]
    data["summary"] = report.summarise(data["runs"])
    assert data["summary"]["30-cold"][report.OURS_HUB]["median_bound"] == 18.0
    table = report.readme_table(data)
    assert "| 24.0 s (24.0, 26.0, 20.0) | 18.0 s |" in table  # the bound beside the p95
    assert "pair 2 (plain DockerSpawner first): 26.0 s against 24.0 s (1.08x)" in table
    assert "median 0.96x, ours worse in 1 of 3 pairs" in table


def test_the_capacity_auto_chose_is_set_against_the_sweeps_best() -> None:
    report = report_module()
    data = results()
    data["runs"] += [
        run(report.OURS_HUB, "30-cold", 0, p95) | {"sweep": capacity, "admission": admission}
        for capacity, p95, admission in [
            ("2", 30.0, []),
            ("3", 26.0, []),
            ("auto", 26.5, ["admitting 3 at once"]),
        ]
    ]
    data["summary"] = report.summarise(data["runs"])
    table = report.readme_table(data)
    assert (
        "(auto: admitting 3 at once) gave a p95 of 26.5 s; the best fixed capacity of the sweep, 3, 26.0 s"
        in table
    )


def arrival_module() -> ModuleType:
    return load_benchmark("arrival_profile.py", "arrival_profile")


def reading(at: float, hub: float, engine: dict[int, float], learner: float, host: float) -> dict:  # type: ignore[type-arg]
    return {"at": at, "hub": hub, "engine": engine, "learner": learner, "host": host}


def test_an_arrivals_phases_come_from_the_readings_at_each_steps_end() -> None:
    profile = arrival_module()
    readings = [
        reading(0.0, 10.0, {1: 5.0}, 0.0, 100.0),  # before the login
        reading(0.3, 10.1, {1: 5.0}, 0.0, 100.2),  # logged in
        reading(2.3, 10.4, {1: 5.2, 7: 0.1}, 1.1, 102.0),  # server answering (a new shim: pid 7)
        reading(3.0, 10.45, {1: 5.2, 7: 0.1}, 1.6, 102.7),  # session: kernel started
        reading(3.2, 10.47, {1: 5.2, 7: 0.1}, 1.75, 102.9),  # first cell's output
        reading(23.2, 10.5, {1: 5.2, 7: 0.1}, 1.8, 103.5),  # settled
    ]
    phases = profile.phases_of(readings, (0.4, 1.1))
    assert phases["login and claim check"] == {"cpu_s": pytest.approx(0.1), "wall_s": pytest.approx(0.3)}
    assert phases["hub spawn work and proxy"]["cpu_s"] == pytest.approx(0.3)
    assert phases["hub spawn work and proxy"]["wall_s"] == pytest.approx(0.5)  # 2.0 less the container's
    assert phases["container create and work-folder mount"] == {"cpu_s": pytest.approx(0.3), "wall_s": 0.4}
    assert phases["server start by import"] == {"cpu_s": pytest.approx(1.1), "wall_s": 1.1}
    assert phases["kernel start"]["cpu_s"] == pytest.approx(0.55)
    assert phases["first cell"]["cpu_s"] == pytest.approx(0.17)
    assert phases["kernel started ahead"]["cpu_s"] == pytest.approx(0.05)  # none: the learner had one
    assert phases["all in (the host, this client included)"]["cpu_s"] == pytest.approx(2.9)
    medians = profile.median_phases([phases, phases, phases])
    assert medians["first cell"] == {"cpu_s": 0.17, "wall_s": 0.2, "samples": 3}


def test_dockers_timestamps_and_the_engines_processes(tmp_path: Path) -> None:
    profile = arrival_module()
    assert profile.docker_time("2026-12-07T17:00:01.5Z") - profile.docker_time(
        "2026-12-07T17:00:00Z"
    ) == pytest.approx(1.5)
    assert profile.engine_delta({1: 5.0, 2: 1.0}, {1: 5.5, 3: 0.2}) == pytest.approx(0.7)  # 2 exited, 3 new
    for pid, comm in [("11", "dockerd"), ("12", "python3"), ("13", "containerd-shim")]:
        (tmp_path / pid).mkdir()
        (tmp_path / pid / "comm").write_text(comm + "\n")
        (tmp_path / pid / "stat").write_text(f"{pid} ({comm}) S 1 1 1 0 -1 0 0 0 0 0 100 50 10 0 20 0\n")
    (tmp_path / "self").mkdir()
    found = profile.engine_cpu(tmp_path)
    assert set(found) == {11, 13}
    tick = os.sysconf("SC_CLK_TCK")
    assert found[11] == pytest.approx(160 / tick)


def test_the_server_start_variants_take_turns_going_first() -> None:
    starts = load_benchmark("server_start.py", "server_start")
    variants = ["shipped", "pypi", "readonly"]
    firsts = [starts.rotated(variants, turn)[0] for turn in range(3)]
    assert firsts == variants  # each goes first once in three rounds
    assert all(sorted(starts.rotated(variants, turn)) == sorted(variants) for turn in range(5))


def test_the_arrival_profile_is_a_table_of_phases_for_both_hubs() -> None:
    report = report_module()
    data = results()
    data["summary"] = report.summarise(data["runs"])
    row = {"cpu_s": 0.01, "wall_s": 0.2, "samples": 3}
    data["arrival_profile"] = {
        report.OURS_HUB: {"login and claim check": row, "first cell": row | {"cpu_s": 0.3}},
        report.PLAIN_HUB: {"login and claim check": row | {"cpu_s": 0.02}, "first cell": row},
        "errors": ["plain DockerSpawner, sample 2: RuntimeError: spawn: timed out"],
    }
    table = report.readme_table(data)
    assert "median of 3 per hub" in table
    assert "| phase | dlworkshop up | plain DockerSpawner |" in table
    assert "| login and claim check | 0.01 (0.20) | 0.02 (0.20) |" in table
    assert "| first cell | 0.30 (0.20) | 0.01 (0.20) |" in table
