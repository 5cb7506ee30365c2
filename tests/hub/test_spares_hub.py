"""Hot spares on a real hub (`dlworkshop up`): inside the workshop window the hub keeps a spare
running; a first-time learner lands on it at login, the hub starts the next one, and a returning
learner finds their own. The shared hub's settings with spares and a window, on a hub of its own
(the shared hub has no window: its learners start under their own names). No time is asserted."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta

import docker
import pytest

from dlworkshop import contract
from dlworkshop.hubclient import HubClient
from tests.fixtures.hub import TEST_PORT, RunningHub, hub_config_with, hub_up
from tests.fixtures.images import TEST_PREFIX

pytestmark = [pytest.mark.docker, pytest.mark.hub, pytest.mark.slow]

NAME = f"{TEST_PREFIX}-hub-spares"


@pytest.fixture(scope="module")
def spares_hub(
    learner_image: str, hub_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningHub]:
    now = datetime.now().astimezone()
    config = tmp_path_factory.mktemp("spares") / "workshop.yaml"
    config.write_text(
        hub_config_with(
            {
                # The workshop has begun: nothing to pre-warm, the spare pool runs at once.
                "workshop": {
                    "start": (now - timedelta(minutes=1)).isoformat(timespec="seconds"),
                    "end": (now + timedelta(hours=2)).isoformat(timespec="seconds"),
                },
                "learners": {"count": 4},
                "prewarm": {"seats": 0, "spares": 1, "refill_seconds": 1},
                "hub": {
                    "port": TEST_PORT + 2,
                    "container_name": NAME,
                    "network": f"{TEST_PREFIX}-spares",
                    "data_volume": f"{TEST_PREFIX}-spares-hub-data",
                },
            }
        )
    )
    with hub_up(config) as hub:
        yield hub


def service_client(hub: RunningHub) -> HubClient:
    """The hub's API with the prewarm service's token (read from the hub's volume)."""
    token_file = f"{contract.HUB_DATA}/{contract.PREWARM_TOKEN_FILE}"
    found = docker.from_env().containers.get(NAME).exec_run(["cat", token_file])
    assert found.exit_code == 0, found.output
    return HubClient(hub.url, found.output.decode().strip())


def wait_until_ready(hub: RunningHub, api: HubClient, name: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while True:
        server = api.server(name)
        if server and server.get("ready"):
            return
        assert time.monotonic() < deadline, (
            f"spare {name} not ready after {timeout:.0f} s:\n{hub.log()[-3000:]}"
        )
        time.sleep(1)


def test_a_first_time_learner_lands_on_a_running_spare_and_the_spare_is_refilled(
    spares_hub: RunningHub,
) -> None:
    with service_client(spares_hub) as api:
        wait_until_ready(spares_hub, api, "seat-01")
        assert "spares: starting seat-01" in spares_hub.log()
        # A spare starts through the spawner like anyone's server: it holds its GPU share.
        assert spares_hub.container("seat-01").labels.get(contract.LABEL_GPU_DEVICES), (
            "the spare holds no GPU"
        )

        with spares_hub.login("ada") as ada:
            me = ada.whoami()
        assert me["name"] == "seat-01" and me["servers"][""]["ready"], f"ada's server was not running: {me}"

        # The pool notices the spare is taken and starts the next one.
        wait_until_ready(spares_hub, api, "seat-02")
        assert "spares: starting seat-02" in spares_hub.log()
        with spares_hub.login("bo") as bo:
            me = bo.whoami()
            assert me["name"] == "seat-02" and me["servers"][""]["ready"], (
                f"bo's server was not running: {me}"
            )
            # The spare's server is now bo's: JupyterLab shows the name he typed.
            identity = bo.server_api("seat-02", "GET", "/api/me").json()["identity"]
            assert identity["display_name"] == "bo", identity

        # A returning learner finds her own server and volume, not the next spare.
        wait_until_ready(spares_hub, api, "seat-03")
        with spares_hub.login("ada") as back:
            assert back.whoami()["name"] == "seat-01"
