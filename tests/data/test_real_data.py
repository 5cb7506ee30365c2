"""The real datasets kept in the repository are the published files, unchanged, with their sources
and licences beside them (tests/data/real/SOURCES.md)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from tests.conftest import REAL_DATA


def recorded_hashes() -> dict[str, str]:
    """file name -> sha256, as SOURCES.md's table records them."""
    rows = re.findall(
        r"^\| `([^`]+)` \|.*\| ([0-9a-f]{64}) \|$", (REAL_DATA / "SOURCES.md").read_text(), re.M
    )
    return dict(rows)


def test_every_real_file_is_recorded_with_its_hash() -> None:
    kept = {path.name for path in REAL_DATA.iterdir() if path.name != "SOURCES.md"}
    assert set(recorded_hashes()) == kept


@pytest.mark.parametrize("name", sorted(recorded_hashes()))
def test_real_file_matches_its_recorded_hash(name: str) -> None:
    path: Path = REAL_DATA / name
    assert hashlib.sha256(path.read_bytes()).hexdigest() == recorded_hashes()[name]


def test_the_weather_licence_is_kept_beside_the_data() -> None:
    assert "MIT License" in (REAL_DATA / "weather_prediction_dataset.LICENSE").read_text()
