"""A learner who floods their container's stdout with ten times resources.log_max: the engine keeps
at most the cap of it on the host's disk, in the files `docker inspect` names, and the neighbours
carry on. On the hub of `dlworkshop up`, whose engine has no log defaults here (no daemon.json log
options: the containers' own options hold the cap), and on a deployed host. And the hub itself,
which logs a line per request, under one learner's flood of requests: its log stays within the cap
and the hub still lets a learner in."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import docker
import httpx
import pytest

from dlworkshop import contract
from dlworkshop.settings import load_settings
from tests.fixtures.ansible import DeployHost
from tests.fixtures.hub import TEST_PORT, RunningHub, hub_config_with, hub_up
from tests.fixtures.images import TEST_PREFIX
from tests.hub.test_faults import at_work, deployed_learner

pytestmark = [pytest.mark.docker]

# Run in the learner's kernel: the container's own stdout (what `docker logs` shows), written past
# Jupyter's output handling, as a runaway loop or a mischievous learner would.
FLOOD = """
import os
out = os.open('/proc/1/fd/1', os.O_WRONLY)
block = (b'x' * 1023 + b'\\n') * 64
written = 0
while written < {total}:
    written += os.write(out, block)
os.close(out)
print(written)
"""


def log_files(container: docker.models.containers.Container) -> list[Path]:
    """The engine's log file of the container and its rotated predecessors (`<log>.1`, ...)."""
    container.reload()
    current = Path(container.attrs["LogPath"])
    return sorted(current.parent.glob(current.name + "*"))


@pytest.mark.hub
def test_a_learner_flooding_their_stdout_stays_within_the_log_cap(running_hub: RunningHub) -> None:
    cap = running_hub.settings.resources.log_max
    expected = contract.docker_log_config(cap)
    hub = docker.from_env().containers.get(running_hub.settings.hub.container_name)
    assert hub.attrs["HostConfig"]["LogConfig"] == expected
    flooder, neighbour = at_work(running_hub, "flood-ada"), at_work(running_hub, "flood-bo")
    for learner in (flooder, neighbour):
        learner.save("mine.txt", f"work of {learner.name}")
    container = running_hub.container(flooder.name)
    assert container.attrs["HostConfig"]["LogConfig"] == expected
    log = Path(container.attrs["LogPath"])
    if not os.access(log.parent, os.R_OK | os.X_OK):
        pytest.skip(f"the engine's log folder {log.parent} is not readable by this user (CI runs as root)")
    written = int(flooder.run(FLOOD.format(total=10 * cap), timeout=900).strip())
    assert written >= 10 * cap
    files = log_files(container)
    sizes = {path.name: path.stat().st_size for path in files}
    # Rotated: every file the driver keeps, each at most its share, together at most the cap.
    assert len(files) == contract.LOG_FILES, sizes
    assert all(size <= cap // contract.LOG_FILES for size in sizes.values()), sizes
    # The flood reached the files: the oldest kept one is full.
    assert sizes[files[-1].name] >= int(expected["Config"]["max-size"]), sizes
    assert sum(sizes.values()) <= cap, sizes
    # The neighbour saves, and a learner arriving now starts and saves.
    neighbour.save("after.txt", "saved after the flood")
    assert neighbour.read("after.txt") == "saved after the flood"
    newcomer = at_work(running_hub, "flood-cy")
    newcomer.save("mine.txt", "work of flood-cy")
    assert newcomer.run("print(open('mine.txt').read())").strip() == "work of flood-cy"
    assert flooder.read("mine.txt") == "work of flood-ada"
    for learner in (flooder, neighbour, newcomer):
        learner.browser.stop(learner.name)


@pytest.mark.ansible
@pytest.mark.slow
def test_on_a_deployed_host_a_learners_flood_stays_within_the_log_cap(deployed: DeployHost) -> None:
    settings = load_settings(deployed.config)
    cap = settings.resources.log_max
    flooder, neighbour = deployed_learner(deployed, "flood-ada"), deployed_learner(deployed, "flood-bo")
    neighbour.save("mine.txt", "work of flood-bo")
    container = contract.learner_container_name(settings.hub.container_name, flooder.name)
    log = deployed.run(f"docker inspect --format '{{{{.LogPath}}}}' {container}").strip()
    written = int(flooder.run(FLOOD.format(total=10 * cap), timeout=900).strip())
    assert written >= 10 * cap
    sizes = dict(line.rsplit(" ", 1) for line in deployed.run(f"stat -c '%n %s' {log}*").splitlines())
    assert len(sizes) == contract.LOG_FILES, sizes
    assert sum(int(size) for size in sizes.values()) <= cap, sizes
    neighbour.save("after.txt", "saved after the flood")
    assert neighbour.read("after.txt") == "saved after the flood"
    assert neighbour.read("mine.txt") == "work of flood-bo"
    for learner in (flooder, neighbour):
        learner.browser.stop(learner.name)


# The flood hub: the shared hub's settings with the smallest cap `check` allows, so ten times it is
# a few thousand long requests.
FLOOD_HUB = f"{TEST_PREFIX}-hub-logflood"
FLOOD_HUB_LOG_MAX = "1M"


@pytest.fixture(scope="module")
def flood_hub(
    learner_image: str, hub_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningHub]:
    config = tmp_path_factory.mktemp("logflood") / "workshop.yaml"
    config.write_text(
        hub_config_with(
            {
                "resources": {"log_max": FLOOD_HUB_LOG_MAX},
                "hub": {
                    "port": TEST_PORT + 3,
                    "container_name": FLOOD_HUB,
                    "network": f"{TEST_PREFIX}-logflood",
                    "data_volume": f"{TEST_PREFIX}-logflood-hub-data",
                },
            }
        )
    )
    with hub_up(config) as hub:
        yield hub


# A query string the hub ignores but logs whole: what a learner who wants the log to grow fast sends.
PADDING = "x" * 4000


async def request_flood(url: str, cookies: httpx.Cookies, count: int, parallel: int = 16) -> int:
    """`count` requests the hub logs one line each for (the learner's own /hub/api/user with their
    cookie, and an unauthenticated /hub/api/users the hub refuses), each with a 4 kB query,
    `parallel` at a time; returns how many the hub answered."""
    answered = 0
    queue = iter(range(count))

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal answered
        for number in queue:
            path = "/hub/api/user" if number % 2 else "/hub/api/users"
            response = await client.get(
                path, params={"padding": PADDING}, cookies=cookies if number % 2 else None
            )
            answered += response.status_code in (200, 403)

    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        await asyncio.gather(*(worker(client) for _ in range(parallel)))
    return answered


@pytest.mark.hub
@pytest.mark.slow
def test_the_hub_under_one_learners_request_flood_stays_within_its_log_cap(flood_hub: RunningHub) -> None:
    cap = flood_hub.settings.resources.log_max
    hub = docker.from_env().containers.get(FLOOD_HUB)
    assert hub.attrs["HostConfig"]["LogConfig"] == contract.docker_log_config(cap)
    log = Path(hub.attrs["LogPath"])
    if not os.access(log.parent, os.R_OK | os.X_OK):
        pytest.skip(f"the engine's log folder {log.parent} is not readable by this user (CI runs as root)")
    learner = flood_hub.login("flood-dee")
    # What one request adds to the log, from a sample small enough not to rotate it: the number of
    # requests that writes ten times the cap follows.
    before = log.stat()
    sample = 12  # about 50 kB: a rotation, at a third of the cap a file, would change the inode
    assert asyncio.run(request_flood(flood_hub.url, learner.cookies, sample)) == sample
    after = log.stat()
    assert after.st_ino == before.st_ino and after.st_size > before.st_size, "the hub logged nothing"
    per_request = (after.st_size - before.st_size) / sample
    count = int(10 * cap / per_request) + 1
    assert asyncio.run(request_flood(flood_hub.url, learner.cookies, count)) == count
    sizes = {path.name: path.stat().st_size for path in log_files(hub)}
    assert len(sizes) == contract.LOG_FILES, sizes
    assert sum(sizes.values()) <= cap, sizes
    # The hub still lets a learner in, and says who they are.
    newcomer = flood_hub.login("flood-eve")
    assert newcomer.get("/hub/api/user").json()["name"] == "flood-eve"
