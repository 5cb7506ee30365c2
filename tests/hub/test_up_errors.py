"""`dlworkshop up` fails in one clear line, touching nothing, when the user can fix the cause."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.docker]
CONFIG = """\
auth: {mode: shared-code, access_code: x}
image: {name: dlworkshop/learner, tag: test}
hub: {image: "dlworkshop/hub:test", port: PORT, container_name: dlworkshop-hub-errors, network: dlworkshop-errors, data_volume: dlworkshop-errors-data}
"""


def up(config: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dlworkshop", "up", "-c", str(config)],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
    )


def test_a_busy_port_is_one_clear_error_and_nothing_is_created(docker_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        config = tmp_path / "workshop.yaml"
        config.write_text(CONFIG.replace("PORT", str(busy.getsockname()[1])))
        result = up(config)
    assert result.returncode == 2
    assert "is already in use" in result.stderr and "Traceback" not in result.stderr
    assert not docker_client.networks.list(names=["dlworkshop-errors"])
    assert not docker_client.containers.list(all=True, filters={"name": "dlworkshop-hub-errors"})


def test_no_docker_engine_is_one_clear_error(tmp_path: Path) -> None:
    config = tmp_path / "workshop.yaml"
    config.write_text(CONFIG.replace("PORT", "8399"))
    result = up(config, DOCKER_HOST="unix:///nonexistent/docker.sock")
    assert result.returncode == 2
    assert "the Docker engine is not running" in result.stderr and "Traceback" not in result.stderr


def test_an_invalid_config_is_rejected_before_anything_starts(tmp_path: Path) -> None:
    config = tmp_path / "workshop.yaml"
    config.write_text("auth: {mode: shared-code}\nresources: {memory: lots}\n")
    result = up(config)
    assert result.returncode == 2
    assert "auth: mode shared-code needs auth.access_code" in result.stderr
    assert "resources.memory" in result.stderr


def test_a_missing_image_archive_is_one_clear_error(docker_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "workshop.yaml"
    config.write_text(
        CONFIG.replace("PORT", "8398").replace(
            "image: {name: dlworkshop/learner, tag: test}",
            f"image: {{name: dlworkshop/learner, tag: not-loaded, source: archive, archive: {tmp_path / 'nope.tar'}}}",
        )
    )
    result = up(config)
    assert result.returncode == 2
    assert "nope.tar does not exist" in result.stderr and "Traceback" not in result.stderr
    assert not docker_client.networks.list(names=["dlworkshop-errors"])
