"""Every lock records the moment it was resolved at, and a re-lock without --upgrade keeps it: what
makes the lock tests independent of what the package index serves today (no index contacted here)."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

import pytest

from dlworkshop.image.lock import (
    BINDER_REQUIREMENTS,
    HUB_LOCK,
    learner_lock_file,
    resolution_time,
    resolved_at,
)

LOCKS = [learner_lock_file("cpu"), learner_lock_file("cuda"), HUB_LOCK, BINDER_REQUIREMENTS]


@pytest.mark.parametrize("lock_file", LOCKS, ids=lambda path: str(path.name))
def test_each_lock_records_when_it_was_resolved(lock_file: Path) -> None:
    moment = resolved_at(lock_file)
    assert moment and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", moment), lock_file.read_text()[:300]


def test_binder_is_resolved_as_of_the_cpu_lock() -> None:
    assert resolved_at(BINDER_REQUIREMENTS) == resolved_at(learner_lock_file("cpu"))


def test_a_relock_keeps_the_recorded_moment_and_an_upgrade_moves_it(tmp_path: Path) -> None:
    lock_file = tmp_path / "requirements.lock"
    lock_file.write_text(
        "# resolved from the packages published before 2026-01-02T03:04:05Z (dlworkshop image lock)\n"
        "--index-url https://pypi.org/simple\n"
    )
    assert resolution_time(lock_file, upgrade=False) == "2026-01-02T03:04:05Z"
    before = datetime.now(timezone.utc).replace(microsecond=0)
    upgraded = datetime.strptime(resolution_time(lock_file, upgrade=True), "%Y-%m-%dT%H:%M:%S%z")
    assert before <= upgraded <= datetime.now(timezone.utc)


def test_a_first_lock_is_resolved_as_of_now(tmp_path: Path) -> None:
    moment = datetime.strptime(
        resolution_time(tmp_path / "missing.lock", upgrade=False), "%Y-%m-%dT%H:%M:%S%z"
    )
    assert abs((datetime.now(timezone.utc) - moment).total_seconds()) < 60
