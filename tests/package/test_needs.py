"""The lesson's measured needs: the notebooks' `needs` metadata equals the committed results file,
and a plan whose memory quota cannot teach the lesson is refused (check, up, render, deploy share
dlworkshop.needs.plan_verdict), naming the first episode that cannot run and the quota that would."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

from dlworkshop.lessons import list_lessons
from dlworkshop.needs import (
    EpisodeNeed,
    latest_results,
    lesson_needs,
    memory_verdict,
    need_of,
    results_needs,
)
from dlworkshop.settings import format_bytes, parse_bytes

REPO = Path(__file__).resolve().parents[2]
RESULTS = latest_results(REPO / "benchmarks" / "results")


def test_a_results_file_is_committed_and_says_what_data_it_measured() -> None:
    assert RESULTS is not None, "no benchmarks/results/episode-needs-*.json"
    assert {"date", "machine", "load_at_start", "image", "data", "margin", "episodes"} <= set(RESULTS)
    assert RESULTS["margin"]["why"]
    for name, variants in RESULTS["episodes"].items():
        assert variants["gpu"] == {"missing": "no GPU on the measuring machine"}, name
        for size in ("smoke", "full"):
            figures = variants["cpu"][size]
            # Every figure is measured or says why not.
            assert figures.get("missing") or {"memory_bytes", "cpu_seconds", "wall_seconds"} <= set(figures)


def test_the_margin_is_the_widest_spread_of_the_files_repeated_runs() -> None:
    """Recomputed here from the runs the file records: each episode's peak is its largest run's,
    and the margin the checks add is the widest (max - min) / min of an episode measured three
    times or more, up to a whole percent. Every episode at the size the refusal uses was measured
    three times, or the file says why not."""
    assert RESULTS is not None
    spreads = []
    for name, variants in RESULTS["episodes"].items():
        for size, figures in variants["cpu"].items():
            runs = [run for run in figures.get("runs", []) if "memory_bytes" in run]
            if not runs:
                continue
            peaks = [run["memory_bytes"] for run in runs]
            assert figures["memory_bytes"] == max(peaks), (name, size)
            spread = figures["memory_spread"]
            assert (spread["min"], spread["max"], spread["runs"]) == (min(peaks), max(peaks), len(peaks))
            if len(runs) >= 3:
                spreads.append((max(peaks) - min(peaks)) / min(peaks))
    assert spreads, "no episode was measured three times: the margin would not be fitted"
    assert RESULTS["margin"]["fraction"] == math.ceil(max(spreads) * 100) / 100
    for lesson in list_lessons(REPO / "lessons"):
        need = need_of(lesson.name, lesson.needs)
        assert need is not None, lesson.name
        assert need.margin == RESULTS["margin"]["fraction"]
        figures = RESULTS["episodes"][lesson.name]["cpu"][need.size]
        assert figures["memory_spread"]["runs"] >= 3 or figures.get("fewer_runs"), lesson.name


def test_the_notebooks_needs_metadata_equals_the_results_file() -> None:
    """Regenerate with `python benchmarks/episode_needs.py --metadata`."""
    assert RESULTS is not None
    lessons = list_lessons(REPO / "lessons")
    assert {lesson.name for lesson in lessons} == set(RESULTS["episodes"])
    for lesson in lessons:
        assert lesson.needs == results_needs(RESULTS, lesson.name), lesson.name


def _workshop(tmp_path: Path, memory: str) -> Path:
    config = tmp_path / "workshop.yaml"
    config.write_text(
        f"learners: {{count: 4}}\nauth: {{mode: shared-code, access_code: x}}\nresources: {{cpu: 1, memory: {memory}}}\n"
    )
    return config


def _check(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "dlworkshop",
            "check",
            "-c",
            str(config),
            "--host-cpus",
            "16",
            "--host-memory",
            "64G",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


def _taught() -> dict[int, str]:
    """The notebooks a workshop teaches by default, by episode number: the first by name (an
    alternative, 04b-cifar10 beside 04-dollar-street, only where chosen)."""
    import json

    first: dict[int, str] = {}
    for path in sorted((REPO / "lessons").glob("[0-9]*.ipynb")):
        first.setdefault(json.loads(path.read_text())["metadata"]["dlworkshop"]["episode"], path.stem)
    return first


def test_check_refuses_640m_naming_the_first_episode_that_cannot_run(tmp_path: Path) -> None:
    needs = [
        need for need in lesson_needs(list_lessons(REPO / "lessons")) if need.episode in _taught().values()
    ]
    killed = [need for need in needs if need.peak_bytes > parse_bytes("640M")]
    assert killed, "no measured episode outgrows 640M: the results file changed, so must this test"
    # Figures computed here from the file, independently of dlworkshop.needs.
    margin = RESULTS["margin"]["fraction"] if RESULTS else 0.0
    step = 64 * 2**20
    smallest = max(math.ceil(n.peak_bytes * (1 + margin) / step) * step for n in needs)
    result = _check(_workshop(tmp_path, "640M"))
    assert result.returncode != 0
    assert f"episode {killed[0].episode} needs about" in result.stderr
    assert f"fix: set resources.memory to at least {format_bytes(smallest)}" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_passes_just_above_every_measured_peak(tmp_path: Path) -> None:
    largest = max(need.quota_bytes for need in lesson_needs(list_lessons(REPO / "lessons")))
    result = _check(_workshop(tmp_path, format_bytes(largest)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "cannot teach" not in result.stdout + result.stderr


NEEDS = [
    EpisodeNeed("02-penguins", parse_bytes("400M"), 10.0, "smoke", 0.1),
    EpisodeNeed("04-dollar-street", parse_bytes("900M"), 60.0, "smoke", 0.1),
    EpisodeNeed("05-transfer-learning", parse_bytes("1200M"), 90.0, "smoke", 0.1),
]


def test_a_quota_below_a_peak_is_a_problem_naming_the_first_episode_and_the_fix() -> None:
    problems, warnings = memory_verdict(parse_bytes("640M"), NEEDS)
    assert not warnings and len(problems) == 1
    assert "episode 04-dollar-street needs about 1G (peak 900 MiB at smoke size)" in problems[0]
    assert "(also 05-transfer-learning)" in problems[0]
    # 1200 MiB x 1.1 = 1320 MiB, up to a 64 MiB step: 1344M.
    assert problems[0].endswith("fix: set resources.memory to at least 1344M")


def test_an_alternative_episode_that_does_not_fit_is_a_warning_naming_it_and_its_quota() -> None:
    cifar = EpisodeNeed("04b-cifar10", parse_bytes("2000M"), 900.0, "full", 0.1, "04-dollar-street")
    problems, warnings = memory_verdict(parse_bytes("1344M"), [*NEEDS, cifar])
    assert not problems and len(warnings) == 1
    assert "cannot teach episode 04b-cifar10, the alternative to 04-dollar-street" in warnings[0]
    # 2000 MiB x 1.1 = 2200 MiB, up to a 64 MiB step: 2240M.
    assert "would be killed for memory; set resources.memory to 2240M to teach it instead" in warnings[0]
    problems, warnings = memory_verdict(parse_bytes("640M"), [*NEEDS, cifar])
    assert problems[0].endswith("fix: set resources.memory to at least 1344M") and len(warnings) == 1
    assert memory_verdict(parse_bytes("2240M"), [*NEEDS, cifar]) == ([], [])


def test_a_quota_within_an_episodes_margin_is_a_warning_naming_it() -> None:
    problems, warnings = memory_verdict(parse_bytes("1250M"), NEEDS)
    assert not problems and len(warnings) == 1
    assert "episode(s) 05-transfer-learning" in warnings[0] and "1344M runs every episode" in warnings[0]
    assert memory_verdict(parse_bytes("1344M"), NEEDS) == ([], [])
    assert memory_verdict(parse_bytes("256M"), []) == ([], [])


def test_check_sizes_the_example_room_from_the_results_file() -> None:
    """The smallest host, computed here from the results file and the notebooks' budgets alone."""
    import json

    from dlworkshop.capacity import HostFacts, check_capacity
    from dlworkshop.settings import load_settings

    assert RESULTS is not None
    example = REPO / "examples" / "workshop.yaml"
    settings = load_settings(example)
    room = check_capacity(settings, HostFacts(cpus=8, memory=parse_bytes("64G"), gpus=0)).concurrent
    cores, quota = 1, 0
    margin, step = RESULTS["margin"]["fraction"], 64 * 2**20
    rows = []
    taught = _taught()
    for name, variants in RESULTS["episodes"].items():
        size = "full" if "memory_bytes" in variants["cpu"]["full"] else "smoke"
        figures = variants["cpu"][size]
        if "memory_bytes" not in figures:
            continue
        notebook = json.loads((REPO / "lessons" / f"{name}.ipynb").read_text())
        budget = notebook["metadata"]["dlworkshop"]["budget_seconds"]["cpu"][size]
        episode_quota = math.ceil(figures["memory_bytes"] * (1 + margin) / step) * step
        if name in taught.values():  # the smallest host is sized for the taught episodes
            cores = max(cores, math.ceil(figures["cpu_seconds"] * room / budget))
            quota = max(quota, episode_quota)
        else:
            name += " *"  # the table's caption says which episode it replaces
        # The room training at once on 8 cores, never faster than one learner's CPU quota.
        seconds = max(figures["cpu_seconds"] * room / 8, figures["cpu_seconds"] / settings.resources.cpu)
        fits = "yes" if seconds <= budget else "no"
        rows.append(
            f"{name} {format_bytes(episode_quota)} {figures['cpu_seconds']:g} {seconds:.0f} s {budget:g} s {fits}"
        )
    memory = math.ceil((room * quota + 2**30) / 2**30) * 2**30
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "dlworkshop",
            "check",
            "-c",
            str(example),
            "--host-cpus",
            "8",
            "--host-memory",
            "64G",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    expected = f"smallest host for {room} learners with every episode within budget (CPU, measured figures): "
    assert expected + f"{cores} cores and {format_bytes(memory)}" in " ".join(result.stdout.split()), (
        result.stdout
    )
    # The per-episode table: each measured episode's row, its cells as computed here.
    table = [" ".join(line.replace("│", " ").split()) for line in result.stdout.splitlines()]
    assert rows and all(row in table for row in rows), (rows, result.stdout)


def test_check_passes_just_above_the_largest_peak_with_a_warning_naming_the_tight_episodes(
    tmp_path: Path,
) -> None:
    needs = lesson_needs(list_lessons(REPO / "lessons"))
    largest = max(needs, key=lambda need: need.peak_bytes)
    just_above = f"{math.ceil(largest.peak_bytes / 2**20)}M"
    result = _check(_workshop(tmp_path, just_above))
    assert result.returncode == 0, result.stdout + result.stderr
    out = " ".join(result.stdout.split())
    assert "may be killed for memory" in out and largest.episode in out
