"""`dlworkshop smoke-test --image`: the checks a hub run makes, in a local container of the image.
Episodes that read Keras' own caches are left out here: the test image holds generated fixtures
whose hashes Keras would refuse (the data check still verifies them against the test registry)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO, docker_cli
from tests.fixtures.images import LearnerImage
from tests.fixtures.smoke import report_of, smoke_test

pytestmark = [pytest.mark.docker, pytest.mark.image]
EPISODES = ["--episodes", "01-introduction", "--episodes", "02-penguins"]


def test_the_image_passes_and_the_report_is_written(
    each_learner_image: LearnerImage, image_smoke_config: Path, tmp_path: Path
) -> None:
    """Both variants: the CUDA image, given no GPU, passes on the CPU."""
    result = smoke_test(
        "--image", each_learner_image.tag, *EPISODES, "-c", str(image_smoke_config), "--report", str(tmp_path)
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = report_of(tmp_path)
    checks = {check["check"]: check for check in report["checks"]}
    assert report["passed"] and set(checks) >= {
        "spawn",
        "packages",
        "data caches verified offline",
        "thread pools match the CPU quota",
        "episode 01-introduction",
        "episode 02-penguins",
    }
    assert checks["thread pools match the CPU quota"]["measured"] == "intra 1, inter 1"
    assert (tmp_path / "chart.png").is_file() and (tmp_path / "report.html").is_file()


def test_a_missing_dataset_fails_the_data_check(
    learner_image: str, image_smoke_config: Path, tmp_path: Path
) -> None:
    broken = f"{learner_image}-missing-data"
    dockerfile = (
        f"FROM {learner_image}\nUSER root\nRUN rm /opt/dlworkshop/data/penguins/penguins.csv\nUSER 1000\n"
    )
    subprocess.run(
        [docker_cli(), "build", "-t", broken, "-"],
        input=dockerfile,
        text=True,
        check=True,
        capture_output=True,
    )
    try:
        result = smoke_test(
            "--image",
            broken,
            "--episodes",
            "01-introduction",
            "-c",
            str(image_smoke_config),
            "--report",
            str(tmp_path),
        )
    finally:
        subprocess.run([docker_cli(), "rmi", "-f", broken], capture_output=True)
    assert result.returncode == 1
    assert "not ready: data caches verified offline failed" in result.stderr
    data = next(c for c in report_of(tmp_path)["checks"] if c["check"] == "data caches verified offline")
    assert "penguins/penguins.csv: missing" in data["measured"]


def test_an_episode_over_its_budget_fails_by_name(
    learner_image: str, image_smoke_config: Path, tmp_path: Path
) -> None:
    lessons = tmp_path / "lessons"
    shutil.copytree(REPO / "lessons", lessons)
    notebook = lessons / "01-introduction.ipynb"
    content = json.loads(notebook.read_text())
    content["metadata"]["dlworkshop"]["budget_seconds"]["cpu"]["smoke"] = 1
    notebook.write_text(json.dumps(content))
    result = smoke_test(
        "--image",
        learner_image,
        "--episodes",
        "01-introduction",
        "-c",
        str(image_smoke_config),
        "--report",
        str(tmp_path / "report"),
        env={"DLWORKSHOP_LESSONS": str(lessons)},
    )
    assert result.returncode == 1
    assert "not ready: episode 01-introduction failed" in result.stderr
    episode = report_of(tmp_path / "report")["checks"][-1]
    assert episode["budget"] == "1 s (cpu, smoke)" and episode["seconds"] > 1
