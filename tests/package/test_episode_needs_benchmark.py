"""benchmarks/episode_needs.py's bookkeeping, without Docker: the order its runs take (every
episode's first run first, then the repetitions of the quickest), an episode's figures from its
runs (the largest peak, the medians, the spread, why fewer runs than asked), and the margin fitted
to the widest spread."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dlworkshop.lessons import Lesson
from tests.package.benchmark_scripts import load_benchmark

bench = load_benchmark("episode_needs.py", "episode_needs_under_test")
M = 2**20


def _lesson(name: str) -> Lesson:
    return Lesson(Path(f"{name}.ipynb"), 1, name, [], {})


def _run(peak: int, wall: float = 10.0) -> dict[str, Any]:
    return {"memory_bytes": peak * M, "cpu_seconds": wall / 2, "wall_seconds": wall, "load_before": [1, 1, 1]}


def test_first_runs_first_then_the_quickest_episodes_repetitions() -> None:
    slow, quick = _lesson("04b-cifar10"), _lesson("01-introduction")
    runs = bench.Runs([slow, quick], ["full"], 2, None)
    first = [runs.next(), runs.next()]
    assert [(lesson.name, size) for lesson, size in first] == [
        ("04b-cifar10", "full"),
        ("01-introduction", "full"),
    ]
    runs.done("04b-cifar10", "full", _run(2000, 1800.0), lambda: None)
    runs.done("01-introduction", "full", _run(400, 30.0), lambda: None)
    assert [(lesson.name) for lesson, _ in (runs.next(), runs.next())] == ["01-introduction", "04b-cifar10"]
    assert runs.next() is None


def test_a_failed_run_cancels_its_repetitions() -> None:
    runs = bench.Runs([_lesson("05-transfer-learning")], ["full"], 3, None)
    runs.next()
    runs.done("05-transfer-learning", "full", {"missing": "boom", "load_before": [1, 1, 1]}, lambda: None)
    assert runs.next() is None
    assert runs.summary("05-transfer-learning", "full") == {"missing": "boom", "load_before": [1, 1, 1]}


def test_an_episodes_figures_and_the_margin_fitted_to_the_widest_spread() -> None:
    steady = bench.summarize([_run(400), _run(404), _run(402)], 3, None)
    assert steady["memory_bytes"] == 404 * M and steady["wall_seconds"] == 10.0
    assert steady["memory_spread"] == {
        "runs": 3,
        "min": 400 * M,
        "median": 402 * M,
        "max": 404 * M,
        "fraction": 0.01,
    }
    assert "fewer_runs" not in steady
    wide = bench.summarize([_run(800), _run(860), _run(830)], 3, None)
    short = bench.summarize([_run(2000)], 3, "18:58")
    assert short["fewer_runs"].startswith(
        "1 of 3 runs: no further run could end by the benchmark's stop time (18:58"
    )
    episodes = {
        name: {"cpu": {"full": figures, "smoke": {"missing": "not measured"}}}
        for name, figures in (("a", steady), ("b", wide), ("c", short))
    }
    margin = bench.fitted_margin(episodes)
    # (860 - 800) / 800 = 7.5%, up to a whole percent; the single run of c does not count.
    assert margin["fraction"] == 0.08 and "widest: b full, 7.50%" in margin["why"]
    assert set(margin["spreads"]) == {"a full", "b full"}
    assert bench.fitted_margin({"c": {"cpu": {"full": short}}})["fraction"] == bench.UNFITTED_MARGIN
