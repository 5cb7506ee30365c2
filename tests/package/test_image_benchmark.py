"""benchmarks/image_bench.py's bookkeeping (no image is built or run): the median of the cold starts,
and the README table written from a results file, both images side by side, with the date, the
machine, its load and the TensorFlow each image held."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

from tests.package.benchmark_scripts import MACHINE, load_benchmark


def bench_module() -> ModuleType:
    return load_benchmark("image_bench.py", "image_benchmark")


def results() -> dict[str, Any]:
    bench = bench_module()
    ours, naive = bench.OURS, bench.NAIVE
    measurements: list[dict[str, Any]] = [
        {"measure": "size", "image": ours, "size_bytes": 2_650_000_000, "load_before": [0.5, 0.6, 0.7]},
        {"measure": "size", "image": naive, "size_bytes": 3_004_000_000, "load_before": [0.5, 0.6, 0.7]},
    ]
    cold: dict[str, list[float | None]] = {
        ours: [2.4, 2.1, 9.0],
        naive: [1.6, None, 1.8],
    }  # a slow one, one not answered
    for repeat in range(3):
        for which in (ours, naive) if repeat % 2 == 0 else (naive, ours):
            measurements.append(
                {
                    "measure": "cold_start",
                    "image": which,
                    "repeat": repeat,
                    "seconds": cold[which][repeat],
                    "load_before": [0.8 + repeat / 2, 0.6, 0.7],
                }
            )
    for cpus, pools in (("0.5", 1), ("1", 1), ("2", 2)):
        measurements.append(
            {
                "measure": "threads",
                "image": ours,
                "cpus": cpus,
                "intra": pools,
                "inter": pools,
                "load_before": [1.0],
            }
        )
        measurements.append(
            {"measure": "threads", "image": naive, "cpus": cpus, "intra": 0, "inter": 0, "load_before": [1.0]}
        )
    return {
        "started": "20261129T193000Z",
        "machine": MACHINE,
        "images": {"base": {"reference": "dlworkshop/base:bookworm"}},
        "naive_packages": bench.NAIVE_PACKAGES,
        "tensorflow": {
            ours: {"tensorflow-cpu": "2.21.0", "keras": "3.12.0"},
            naive: {"tensorflow": "2.22.1", "keras": "3.13.0"},
        },
        "repeat": 3,
        "cpu_quotas": ["0.5", "1", "2"],
        "measurements": measurements,
        "notes": "",
    }


def test_the_summary_is_the_median_of_the_cold_starts_that_answered() -> None:
    bench = bench_module()
    summary = bench.summarise(results())
    assert summary["size_gb"] == {bench.OURS: 2.65, bench.NAIVE: 3.0}
    assert summary["cold_start"][bench.OURS] == {"median_s": 2.4, "seconds": [2.4, 2.1, 9.0], "timed_out": 0}
    assert summary["cold_start"][bench.NAIVE] == {
        "median_s": 1.7,
        "seconds": [1.6, None, 1.8],
        "timed_out": 1,
    }
    assert summary["threads"]["2"] == {bench.OURS: [2, 2], bench.NAIVE: [0, 0]}


def test_the_readme_table_comes_from_the_results_file() -> None:
    bench = bench_module()
    data = results()
    data["summary"] = bench.summarise(data)
    table = bench.readme_table(data)
    assert "Measured 2026-11-29 19:30 UTC by `benchmarks/image_bench.py`" in table
    assert "`benchmarks/results/image-bench-20261129T193000Z.json`" in table
    assert "on 2 cores, 24 GiB, Debian, Docker 20.10 (cgroup v1)" in table
    assert "on the same base, `dlworkshop/base:bookworm`" in table
    assert (
        "it resolved tensorflow 2.22.1, keras 3.13.0, ours holds tensorflow-cpu 2.21.0, keras 3.12.0" in table
    )
    assert "cold start 3 times each, the images taking turns" in table
    assert "load average before a measurement 0.5 to 1.8." in table
    assert bench._range([0.88, 0.92]) == "0.9"  # not "0.9 to 0.9"
    assert "| measure | dlworkshop image | upstream way |" in table
    assert "| image size | 2.65 GB (with every dataset) | 3.00 GB (no data) |" in table
    assert (
        "| cold start until the Jupyter API answers, median of 3 (each run) "
        "| 2.4 s (2.4, 2.1, 9.0); the start hook links data and copies lessons | 1.7 s (1.6, timed out, 1.8) |"
    ) in table
    assert (
        "| TensorFlow intra / inter-op threads at `--cpus 0.5` / `1` / `2` | 1/1, 1/1, 2/2 "
        "| 0/0, 0/0, 0/0 (0: TensorFlow's default, every host core) |"
    ) in table


def test_the_readme_block_is_replaced_between_its_markers(tmp_path: Path, monkeypatch: Any) -> None:
    import json

    bench = bench_module()
    data = results()
    data["summary"] = bench.summarise(data)
    results_file = tmp_path / "image-bench.json"
    results_file.write_text(json.dumps(data))
    readme = tmp_path / "README.md"
    start, end = bench.MARKERS
    readme.write_text(f"before\n{start}\nold figures\n{end}\nafter\n")
    monkeypatch.setattr(bench, "README", readme)
    bench.write_readme(results_file)
    text = readme.read_text()
    assert "old figures" not in text
    assert text.startswith(f"before\n{start}\nMeasured 2026-11-29 19:30 UTC")
    assert text.endswith(f"| 0/0, 0/0, 0/0 (0: TensorFlow's default, every host core) |\n{end}\nafter\n")


def test_pip_show_gives_each_package_found_and_its_version() -> None:
    out = "Name: tensorflow\nVersion: 2.22.1\nSummary: TensorFlow\n---\nName: keras\nVersion: 3.13.0\n"
    assert bench_module().parse_pip_show(out) == {"tensorflow": "2.22.1", "keras": "3.13.0"}


def test_the_printed_table_shows_each_cold_start_and_the_tensorflow_versions() -> None:
    from rich.console import Console

    bench = bench_module()
    data = results()
    data["summary"] = bench.summarise(data)
    console = Console(record=True, width=200)
    bench.print_summary(data, console)
    printed = console.export_text()
    assert "2.4 s (2.4, 2.1, 9.0)" in printed and "1.7 s (1.6, timed out, 1.8)" in printed
    assert "tensorflow 2.22.1, keras 3.13.0" in printed
