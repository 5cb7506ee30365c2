"""The tests' image pipeline (tests/fixtures/pipeline.py): which images a run builds ahead, in
which order, and what a test that needs an image gets when its build failed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from rich.console import Console

from tests.conftest import REPO
from tests.fixtures.pipeline import ImagePipeline, needed


@dataclass
class Item:
    fixturenames: list[str]
    name: str = ""
    markers: tuple[str, ...] = ()

    def get_closest_marker(self, marker: str) -> object | None:
        return marker if marker in self.markers else None


def test_a_run_builds_what_its_tests_need_and_what_those_builds_need_in_order() -> None:
    assert needed([Item(["slurm_node_image"]), Item(["hub_image", "tmp_path"])]) == [
        "base_image",
        "deploy_host_image",
        "hub_image",
        "slurm_node_image",
    ]


def test_each_learner_image_asks_for_both_learner_images() -> None:
    assert needed([Item(["each_learner_image"])]) == ["base_image", "learner_image", "cuda_learner_image"]


def test_a_run_without_images_builds_nothing() -> None:
    assert needed([Item(["tmp_path"]), Item([])]) == []


def test_tests_without_images_run_first_and_the_hub_recreating_ones_last_order_kept_otherwise() -> None:
    from tests.conftest import pytest_collection_modifyitems

    items = [
        Item(["deploy_host", "deploy_host_image"], "deploy 1"),  # a closure names every fixture
        Item(["tmp_path"], "settings 1"),
        Item(["hub_image"], "hub restart", ("recreates_shared_hub",)),
        Item(["hub_image"], "hub 1"),
        Item([], "settings 2"),
        Item(["each_learner_image"], "image 1"),
    ]
    pytest_collection_modifyitems(items)  # type: ignore[arg-type]
    assert [item.name for item in items] == [
        "settings 1",
        "settings 2",
        "deploy 1",
        "hub 1",
        "image 1",
        "hub restart",
    ]


def fake_builds(failing: str | None) -> dict:
    def build(name: str):  # type: ignore[no-untyped-def]
        def run(built: dict[str, str], console: Console) -> str:
            if name == failing:
                raise RuntimeError(f"{name} broke")
            return f"{name}:{sorted(built)}"

        return run

    return {name: build(name) for name in ("base_image", "deploy_host_image", "learner_image", "hub_image")}


def test_images_come_from_the_background_and_others_are_built_when_asked(tmp_path: Path) -> None:
    pipeline = ImagePipeline(["base_image", "learner_image"], tmp_path / "log", lambda: fake_builds(None))
    pipeline.start()
    assert pipeline.result("learner_image", lambda: "not this") == "learner_image:['base_image']"
    assert pipeline.result("hub_image", lambda: "built now") == "built now"


def test_a_failed_build_fails_the_tests_that_need_it_or_what_builds_on_it(tmp_path: Path) -> None:
    pipeline = ImagePipeline(
        ["base_image", "deploy_host_image", "hub_image"], tmp_path / "log", lambda: fake_builds("base_image")
    )
    pipeline.start()
    with pytest.raises(RuntimeError, match="base_image broke") as failed:
        pipeline.result("base_image", lambda: "not this")
    assert any("the builds' log" in note for note in failed.value.__notes__)
    with pytest.raises(RuntimeError, match="not built: base_image"):
        pipeline.result("hub_image", lambda: "not this")


def test_the_runs_summary_says_where_the_time_went() -> None:
    from types import SimpleNamespace

    from tests.fixtures.run_time import SHOWN, seconds_per_file, summary

    reports = [
        SimpleNamespace(nodeid="tests/a.py::one", duration=30.0),
        SimpleNamespace(nodeid="tests/a.py::two", duration=30.0),
        SimpleNamespace(nodeid="tests/b.py::one", duration=6.0),
        *(SimpleNamespace(nodeid=f"tests/small{n}.py::t", duration=1.0) for n in range(SHOWN)),
    ]
    per_file = seconds_per_file(reports)  # type: ignore[arg-type]
    assert per_file["tests/a.py"] == 60.0 and per_file["tests/b.py"] == 6.0
    lines = summary(per_file, {"base_image": (0.0, 90.0)}, wall=600.0)
    assert lines[0] == "where the run's 10.0 min went:"
    assert "image base_image" in lines[1] and "90 s" in lines[1] and "0.0-1.5 min" in lines[1]
    assert lines[2].split()[0] == "tests/a.py" and lines[2].split()[-2:] == ["s", "10.0%"]
    assert lines[3].split()[0] == "tests/b.py"
    # The files past the first SHOWN, together: two of the small ones (1 s each).
    assert lines[-1].split()[:3] == ["2", "other", "files"] and lines[-1].split()[-2] == "s"
    assert len(lines) == 2 + SHOWN + 1


def test_a_runs_summary_counts_the_setup_of_passed_tests(tmp_path: Path) -> None:
    """Through pytest itself: a fixture's setup time (where a deploy's or cluster's goes) is in its
    file's figure, though pytest files a passed setup under no status."""
    import subprocess
    import sys

    (tmp_path / "test_slow_setup.py").write_text(
        "import time, pytest\n"
        "@pytest.fixture\n"
        "def slow():\n"
        "    time.sleep(1.5)\n"
        "def test_it(slow):\n"
        "    pass\n"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "tests.conftest",
            "-p",
            "no:cacheprovider",
            "-q",
            "--rootdir",
            str(tmp_path),
            "-c",
            "/dev/null",
            str(tmp_path / "test_slow_setup.py"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    line = next(line for line in result.stdout.splitlines() if "test_slow_setup.py" in line and "%" in line)
    assert float(line.split()[1]) >= 1, line  # "<path> <seconds> s <share>%"
