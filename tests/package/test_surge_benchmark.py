"""benchmarks/surge.py's bookkeeping and benchmarks/surge_report.py (no hub is started): the median of the runs' p95s, and the
README table written from a results file, both hubs side by side, with the date and the machine."""

from __future__ import annotations

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
        "| 10 learners | 30/30 | 9.0 s (9.0, 7.0, 30.0) | 4.5 s | 30/30 | 21.0 s (20.0, 22.0, 21.0) | 10.5 s |"
        in table
    )
    assert "| 30 learners, cold | 0/30 | - | - | - |  |  |" in table
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
