"""Re-creating the hub container (as an upgrade does) leaves learners' servers running and
reachable, their files intact, and the GPU assignments as they were. It re-creates the hub every
other hub test shares, so it runs after them (marker `recreates_shared_hub`, ordered in conftest)."""

from __future__ import annotations

import re

import pytest

from dlworkshop.hubclient import HubError
from tests.fixtures.hub import RunningHub, dlworkshop

pytestmark = [pytest.mark.docker, pytest.mark.hub, pytest.mark.recreates_shared_hub]


def gpu_assignments_logged(running_hub: RunningHub) -> str:
    import docker

    logs = docker.from_env().containers.get(running_hub.settings.hub.container_name).logs().decode()
    return re.findall(r"dlworkshop: GPU assignments (.*)", logs)[-1]


def test_learners_survive_a_hub_recreation(running_hub: RunningHub) -> None:
    sessions = {name: running_hub.start_server(name) for name in ("keep-ada", "keep-grace")}
    ids = {}
    for name in sessions:
        container = running_hub.container(name)
        ids[name] = container.id
        container.exec_run(["bash", "-c", f"echo 'work of {name}' > ~/work/mine.txt"], user="1000")
    labels_before = {
        name: running_hub.container(name).labels.get("org.dlworkshop.gpu.devices") for name in sessions
    }

    recreated = dlworkshop("up", "-c", str(running_hub.config_path))
    assert recreated.returncode == 0, recreated.stdout + recreated.stderr
    # Claimed names live on the hub volume: still theirs, still only with their secrets.
    with pytest.raises(HubError, match="taken"):
        running_hub.login("keep-ada", secret="not-adas")
    running_hub.login("keep-ada").close()

    for name, client in sessions.items():
        container = running_hub.container(name)
        assert container.id == ids[name] and container.status == "running"
        response = running_hub.api_get(client, name, "/api/contents/mine.txt")
        assert response.status_code == 200, (name, response.status_code)
        assert response.json()["content"].strip() == f"work of {name}"
    # The re-created hub rebuilds its GPU shares from the containers' labels when it first hands
    # one out: a new learner's start shows what it believed then, and gets a share of its own.
    running_hub.start_server("keep-linus")
    logged = gpu_assignments_logged(running_hub)
    for name, devices in labels_before.items():
        assert f"('{name}', ('{devices}',))" in logged, logged
    assert "keep-linus" not in logged
