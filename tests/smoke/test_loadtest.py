"""A surge of 10 learners against the hub `dlworkshop up` started: every one runs code, and the
report holds each step's timing. (No time is asserted: these machines are noisy.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.hub import RunningHub

pytestmark = [pytest.mark.docker, pytest.mark.hub, pytest.mark.slow]


def test_ten_learners_arriving_together_all_run_code(running_hub: RunningHub, tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "dlworkshop",
            "loadtest",
            "--hub",
            running_hub.url,
            "--learners",
            "10",
            "--ramp",
            "10",
            "-c",
            str(running_hub.config_path),
            "--report",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((tmp_path / "loadtest.json").read_text())
    assert report["ran_code"] == 10 and report["learners"] == 10
    for learner in report["learners_detail"]:
        assert set(learner["steps"]) == {"login", "spawn", "kernel", "first_cell"}
    assert set(report["summary"]) >= {"login", "spawn", "kernel", "first_cell", "login_to_first_cell"}
    assert (tmp_path / "loadtest.png").read_bytes().startswith(b"\x89PNG")
    import docker

    leftover = [
        c.name
        for c in docker.from_env().containers.list()
        if c.name.startswith(f"{running_hub.settings.hub.container_name}-learner-loadtest-")
    ]
    assert not leftover, f"the loadtest left servers running: {leftover}"
