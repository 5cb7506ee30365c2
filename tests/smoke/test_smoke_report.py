from __future__ import annotations

import json
from pathlib import Path

import pytest

from dlworkshop.clients.smoke.checks import CheckResult, parameterized
from dlworkshop.clients.smoke.report import write_report
from dlworkshop.clients.smoke.run import selected_lessons
from dlworkshop.errors import WorkshopError
from dlworkshop.lessons import list_lessons

RESULTS = [
    CheckResult("login", True, "0.2 s"),
    CheckResult(
        "episode 01-introduction", True, "9.0 s", "60 s (cpu, smoke)", seconds=9.0, budget_seconds=60
    ),
    CheckResult("episode 02-penguins", False, "75.0 s", "60 s (cpu, smoke)", seconds=75.0, budget_seconds=60),
]


def test_report_folder_has_json_html_and_chart(tmp_path: Path) -> None:
    files = write_report(RESULTS, tmp_path, "hub http://x as smoke-test", "smoke")
    data = json.loads(files["json"].read_text())
    assert data["passed"] is False
    assert [c["check"] for c in data["checks"]] == [r.check for r in RESULTS]
    page = files["html"].read_text()
    assert "NOT ready" in page and "episode 02-penguins" in page and "data:image/png;base64," in page
    assert files["png"].read_bytes().startswith(b"\x89PNG")


def test_no_chart_without_episodes(tmp_path: Path) -> None:
    files = write_report(RESULTS[:1], tmp_path, "image x", "smoke")
    assert "png" not in files and "Smoke test: ready" in files["html"].read_text()


def test_episodes_are_chosen_by_name_or_number() -> None:
    assert [lesson.name for lesson in selected_lessons(["02-penguins", "3"])] == ["02-penguins", "03-weather"]
    assert len(selected_lessons(None)) == len(list_lessons())
    with pytest.raises(WorkshopError, match="unknown episode"):
        selected_lessons(["99-nope"])


def test_smoke_parameters_are_injected_after_the_parameters_cell() -> None:
    lesson = next(lesson for lesson in list_lessons() if lesson.name == "02-penguins")
    notebook = parameterized(lesson, "smoke")
    sources = ["".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "code"]
    injected = sources[1]
    assert "epochs = 10" in injected and 'output_dir = "out/02-penguins"' in injected


def test_the_report_shows_an_episodes_memory_against_its_quota_and_need(tmp_path: Path) -> None:
    killed = CheckResult(
        "episode 04-dollar-street",
        False,
        "53.0 s (failed: the kernel was killed for memory at 640M)",
        "150 s (cpu, smoke)",
        seconds=53.0,
        budget_seconds=150,
        memory={"limit_bytes": 640 * 2**20, "need_bytes": 832 * 2**20, "container_peak_bytes": 640 * 2**20},
    )
    files = write_report([*RESULTS, killed], tmp_path, "image x", "smoke")
    assert "<td>peak 640 MiB, quota 640 MiB, needs 832 MiB</td>" in files["html"].read_text()
    assert json.loads(files["json"].read_text())["checks"][-1]["memory"]["need_bytes"] == 832 * 2**20
