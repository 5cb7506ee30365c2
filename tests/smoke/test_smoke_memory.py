"""A learner quota below an episode's need: the smoke test reports that episode's kernel as killed
for memory, naming the quota and the measured need, as soon as the server says the kernel died (a
wait to the cell timeout would report `no reply from the kernel`), and its report shows the
episode's memory against the quota."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlworkshop.lessons import list_lessons
from dlworkshop.needs import lesson_needs
from dlworkshop.settings import parse_bytes
from tests.conftest import REPO
from tests.fixtures.smoke import report_of, smoke_test

pytestmark = [pytest.mark.docker, pytest.mark.image]
# The quota the issue met in the field: TensorFlow imports in it, the Dollar Street episode does not.
QUOTA = "640M"
EPISODE = "04-dollar-street"


def test_an_episode_killed_for_memory_is_reported_as_such(learner_image: str, tmp_path: Path) -> None:
    need = next(n for n in lesson_needs(list_lessons(REPO / "lessons")) if n.episode == EPISODE)
    assert need.peak_bytes > parse_bytes(QUOTA), "the measured need no longer outgrows the quota"
    config = tmp_path / "workshop.yaml"
    config.write_text(
        f"auth: {{mode: shared-code, access_code: x}}\nresources: {{cpu: 1, memory: {QUOTA}}}\n"
    )
    result = smoke_test(
        "--image", learner_image, "--episodes", EPISODE, "-c", str(config), "--report", str(tmp_path / "r")
    )
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    checks = {check["check"]: check for check in report_of(tmp_path / "r")["checks"]}
    assert checks["packages"]["passed"], checks["packages"]
    episode = checks[f"episode {EPISODE}"]
    assert not episode["passed"]
    assert (
        episode["detail"]
        == f"failed: the kernel was killed for memory at {QUOTA}; this episode needs {need.figure()}"
    )
    assert episode["memory"]["limit_bytes"] == parse_bytes(QUOTA)
    assert episode["memory"]["need_bytes"] == need.quota_bytes
    assert "killed for memory at 640M" in result.stdout and "Traceback" not in result.stderr
