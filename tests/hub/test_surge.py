"""The 09:00 surge on a hub of its own (`dlworkshop up`): starts admitted one at a time queue in
order and are never failed; the hub pre-warms seats at workshop.start minus prewarm.minutes_before;
a first login gets a ready seat, a later login the same one. No time is asserted."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from dlworkshop.hubclient import HubClient, HubError
from tests.fixtures.hub import ACCESS_CODE, TEST_PORT, RunningHub, dlworkshop, hub_up
from tests.fixtures.images import HUB_TEST_TAG, LEARNER_TEST_TAG, TEST_PREFIX, image_setting

pytestmark = [pytest.mark.docker, pytest.mark.hub, pytest.mark.slow]

PORT = TEST_PORT + 1
NAME = f"{TEST_PREFIX}-hub-surge"
# The hub's prewarm service fires this long after the hub is up (minutes_before is at least 1).
PREWARM_DELAY = 75


def surge_config(start: datetime) -> str:
    return f"""\
workshop: {{name: surge test, start: {start.isoformat(timespec="seconds")}}}
learners: {{count: 3}}
auth: {{mode: shared-code, access_code: {ACCESS_CODE}}}
image: {image_setting(LEARNER_TEST_TAG)}
resources: {{cpu: 0.5, memory: 1G}}
prewarm: {{minutes_before: 1, seats: 2}}
hub:
  image: {HUB_TEST_TAG}
  port: {PORT}
  container_name: {NAME}
  network: {TEST_PREFIX}-surge
  data_volume: {TEST_PREFIX}-surge-hub-data
  start_capacity: 1
"""


@pytest.fixture(scope="module")
def surge_hub(
    learner_image: str, hub_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningHub]:
    config = tmp_path_factory.mktemp("surge") / "workshop.yaml"
    start = datetime.now().astimezone() + timedelta(minutes=1, seconds=PREWARM_DELAY)
    config.write_text(surge_config(start))
    with hub_up(config) as hub:
        yield hub


def arrive(hub: RunningHub, name: str) -> list[dict]:  # type: ignore[type-arg]
    """A learner's browser: log in, follow the login's redirect (which starts the server), then
    read the spawn page's event stream until ready or failed."""
    with HubClient(hub.url) as browser:
        browser.get(browser.login(name, hub.access_code, hub.secret_of(name)))
        return browser.follow_progress(name, timeout=300)


def test_with_one_start_at_a_time_three_learners_are_queued_and_all_admitted(surge_hub: RunningHub) -> None:
    names = ["ada", "bo", "cy"]
    with ThreadPoolExecutor(len(names)) as pool:
        streams = dict(zip(names, pool.map(lambda n: arrive(surge_hub, n), names), strict=True))
    for name, events in streams.items():
        assert events and events[-1].get("ready"), f"{name} was not admitted: {events}"
        assert not any(e.get("failed") for e in events), events
    places = {
        int(match.group(1))
        for events in streams.values()
        for event in events
        if (match := re.search(r"you are number (\d+) in the queue", event.get("message", "")))
    }
    assert 1 in places, f"nobody was shown a place in the queue: {streams}"
    # The queue is built at the first start, with the capacity of workshop.yaml.
    assert "admitting 1 learner server starts at once" in surge_hub.log()
    assert "admitted after" in surge_hub.log()
    # What a start cost, from the kernel's count for the learner's container (the host's cgroup
    # files, mounted into the hub): a Python server's imports take a good part of a CPU second.
    measured = re.search(r"a learner server start measured here: ([\d.]+) CPU-s", surge_hub.log())
    assert measured and float(measured.group(1)) > 0.2, surge_hub.log()[-2000:]
    for name in names:
        with surge_hub.login(name) as client:
            assert client.get(f"/user/{name}/api").status_code == 200


def test_the_hub_prewarms_seats_and_a_first_login_gets_a_ready_one(surge_hub: RunningHub) -> None:
    deadline = time.monotonic() + PREWARM_DELAY + 240
    while "Pre-warmed servers" not in surge_hub.log():
        assert time.monotonic() < deadline, (
            "the hub's prewarm service did not run:\n" + surge_hub.log()[-3000:]
        )
        time.sleep(2)
    assert re.search(r"seat-01\s+.\s+ready", surge_hub.log()) and re.search(
        r"seat-02\s+.\s+ready", surge_hub.log()
    )

    again = dlworkshop("prewarm", "-c", str(surge_hub.config_path))
    assert again.returncode == 0, again.stdout + again.stderr
    assert len(re.findall(r"seat-0[12]\s+.\s+already running", again.stdout)) == 2, again.stdout

    seats = {}
    for learner in ("dana", "erin"):
        with surge_hub.login(learner) as client:
            me = client.whoami()
        assert re.fullmatch(r"seat-0[12]", me["name"]), me
        assert me["servers"][""]["ready"], f"{learner}'s seat was not running at login: {me}"
        seats[learner] = me["name"]
    assert sorted(seats.values()) == ["seat-01", "seat-02"]

    with surge_hub.login("dana") as back:
        assert back.whoami()["name"] == seats["dana"]
        # The seat's URL keeps its name; JupyterLab's identity (its top bar's user) is hers.
        identity = back.server_api(seats["dana"], "GET", "/api/me").json()["identity"]
        assert (identity["name"], identity["display_name"]) == ("dana", "dana"), identity
        assert identity["username"] == seats["dana"]
    # Someone else typing her name with the code does not get her seat.
    with HubClient(surge_hub.url) as intruder, pytest.raises(HubError, match="taken"):
        intruder.login("dana", ACCESS_CODE, "not-danas")

    # No seat left: the next learner gets their own name.
    with surge_hub.login("finn") as late:
        assert late.whoami()["name"] == "finn"


def test_nobody_logs_in_as_a_seat(surge_hub: RunningHub) -> None:
    with HubClient(surge_hub.url) as client, pytest.raises(HubError, match="login as seat-01 refused"):
        client.login("seat-01", ACCESS_CODE)


def test_prewarm_without_a_hub_is_one_clear_error(tmp_path: Path) -> None:
    config = tmp_path / "workshop.yaml"
    absent = f"{TEST_PREFIX}-hub-absent"
    config.write_text(surge_config(datetime.now().astimezone()).replace(NAME, absent))
    result = dlworkshop("prewarm", "-c", str(config))
    assert result.returncode != 0
    assert f"no hub container {absent}" in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
