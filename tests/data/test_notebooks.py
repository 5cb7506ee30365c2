"""Every lesson notebook runs top to bottom at smoke size on the staged data (real penguins and
weather, generated image fixtures), trains a model whose loss went down, and saves it."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlworkshop.lessons import Lesson, list_lessons, run_lesson
from tests.fixtures.data import StagedData

pytestmark = pytest.mark.notebooks


@pytest.mark.parametrize("lesson", list_lessons(), ids=lambda lesson: lesson.name)
def test_lesson_runs_at_smoke_size_and_trains(
    lesson: Lesson, staged_data: StagedData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in staged_data.env.items():
        monkeypatch.setenv(name, value)
    # Sized like a one-CPU learner, as the image's start hook would.
    for name in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
        monkeypatch.setenv(name, "1")
    run = run_lesson(lesson, "smoke", tmp_path / "out", timeout=600)
    assert run.losses, "no training cell printed its loss"
    assert run.loss_went_down, run.losses
    assert list((tmp_path / "out").glob("*.keras")), "no .keras model saved"
