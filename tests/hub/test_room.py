"""The room on the shared hub of `dlworkshop up` (start capacity 2): `dlworkshop status --json`
shows a queued learner with their place, a learner running a cell (busy kernel, CPU and memory
against the quota, GPU share, work folder) and a stopped one; `--watch` redraws in a terminal
(tmux) as the queue moves; a helper reads the room with their own token and opens a learner's
JupyterLab, which the hub logs with both names; closing the workshop refuses learners' logins with
where their work is, and lets staff in. No time is asserted."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import docker
import pytest

from dlworkshop import contract
from dlworkshop.clients.smoke.jupyter import CellError, JupyterServer, run_code
from dlworkshop.hubclient import HubClient, HubError
from tests.fixtures.hub import RunningHub
from tests.fixtures.images import TEST_PREFIX

pytestmark = [pytest.mark.docker, pytest.mark.hub]

STAFF_SECRET = "teach-4242"  # the instructor's, as tests/hub/test_claimed_names.py claims it
# A cell that keeps its kernel busy, using CPU and holding 300 MiB, until interrupted.
BUSY_CELL = "import time\nheld = bytearray(300 * 2**20)\nwhile True:\n    sum(range(10_000))\n"
WORK_FILE_BYTES = 3 * 2**20


def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dlworkshop", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def status(hub: RunningHub, *args: str, **env: str) -> dict[str, Any]:
    result = cli("status", "-c", str(hub.config_path), "--json", *args, **env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return dict(json.loads(result.stdout))


def person(view: dict[str, Any], name: str) -> dict[str, Any]:
    found = [p for p in view["people"] if p["user"] == name]
    assert found, f"{name} is not in the room: {[p['user'] for p in view['people']]}"
    return found[0]


def until(condition: Callable[[], Any], what: str, timeout: float = 180) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        assert time.monotonic() < deadline, f"{what} within {timeout} s"
        time.sleep(1)


def staff(hub: RunningHub, name: str) -> HubClient:
    """An admin or helper: their name is claimed with `dlworkshop accounts claim` (the form
    refuses staff names), then they log in through the form."""
    claimed = cli("accounts", "claim", name, "-c", str(hub.config_path), DLWORKSHOP_SECRET=STAFF_SECRET)
    assert claimed.returncode == 0 or "already claimed" in claimed.stderr, claimed.stdout + claimed.stderr
    return hub.login(name, secret=STAFF_SECRET)


class Arrival(threading.Thread):
    """A learner logs in and asks for their server, in the background (the hub answers at once; the
    start goes on in the hub). What the hub refused, if it did, is kept for the test to report."""

    def __init__(self, hub: RunningHub, name: str) -> None:
        super().__init__(name=f"arrival of {name}", daemon=True)
        self.hub, self.learner = hub, name
        self.refused: str | None = None
        self.start()

    def run(self) -> None:
        try:
            with HubClient(self.hub.url) as browser:
                browser.login(self.learner, self.hub.access_code, self.hub.secret_of(self.learner))
                browser.start(self.learner)
        except HubError as error:
            self.refused = str(error)


def queued_view(hub: RunningHub, name: str) -> dict[str, Any] | None:
    view = status(hub)
    found = [p for p in view["people"] if p["user"] == name]
    return view if found and found[0]["state"] == "queued" else None


class Holding:
    """Learners whose starts hold the hub's two admission places: each container is paused the
    moment the engine starts it, so its server never answers, until released."""

    def __init__(self, hub: RunningHub, names: list[str]) -> None:
        self.hub, self.names = hub, names
        self.engine = docker.from_env()
        self.paused: list[str] = []

    def __enter__(self) -> Holding:
        events = self.engine.events(
            decode=True,
            since=int(time.time()) - 1,
            filters={
                "type": "container",
                "event": "start",
                "label": f"{contract.LABEL_HUB}={self.hub.settings.hub.container_name}",
            },
        )
        watcher = threading.Thread(target=self._pause, args=(events,), daemon=True)
        watcher.start()
        arrivals = [Arrival(self.hub, name) for name in self.names]
        # Generous: on CI's fresh machine the engine may be writing a build's layers of GBs at the
        # same moment, and a container's create and start wait on it (no time is asserted here).
        watcher.join(timeout=300)
        events.close()
        missing = [name for name in self.names if name not in self.paused]
        if missing:
            # A paused server never answers: left paused, the hub gives up on it 10 minutes later,
            # in the middle of another test. What the hub said of the others says why they never started.
            self.__exit__()
            said = [line for line in self.hub.log().splitlines() if any(name in line for name in missing)]
            refused = {arrival.learner: arrival.refused for arrival in arrivals if arrival.refused}
            pytest.fail(
                f"the hub never started {missing} (paused {self.paused}; refused: {refused}); it logged:\n"
                + "\n".join(said[-30:])
            )
        return self

    def _pause(self, events: Any) -> None:
        for event in events:
            user = event.get("Actor", {}).get("Attributes", {}).get(contract.LABEL_USER)
            if user in self.names and user not in self.paused:
                self.engine.api.pause(event["id"])
                self.paused.append(user)
                if len(self.paused) == len(self.names):
                    return

    def __exit__(self, *exc_info: object) -> None:
        for name in self.paused:
            with contextlib.suppress(docker.errors.APIError):
                self.hub.container(name).unpause()


class Tmux:
    """A terminal of 200 x 50 on a tmux server of the test's own."""

    def __init__(self, name: str) -> None:
        self.socket, self.name = f"{name}-socket", name

    def run(self, *args: str) -> str:
        return subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=True
        ).stdout

    def start(self, command: list[str]) -> None:
        environment = [
            f"{key}={value}"
            for key, value in os.environ.items()
            if key.startswith(("DLWORKSHOP_", "PYTHON", "DOCKER_"))
        ]
        # The terminal's own size, not one the test runner's environment may say (COLUMNS=80).
        size = ["-u", "COLUMNS", "-u", "LINES"]
        self.run(
            "new-session",
            "-d",
            "-s",
            self.name,
            "-x",
            "200",
            "-y",
            "50",
            "env",
            *size,
            *environment,
            *command,
        )

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", self.name)

    def wait_for(self, pattern: str, what: str, timeout: float = 180) -> str:
        """The screen once it shows `pattern`; fails with the screen it last showed."""
        deadline = time.monotonic() + timeout
        while not re.search(pattern, screen := self.screen()):
            assert time.monotonic() < deadline, f"{what} within {timeout} s; the terminal shows:\n{screen}"
            time.sleep(1)
        return screen

    def close(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.run("kill-server")


@pytest.fixture
def busy_learner(running_hub: RunningHub) -> Iterator[str]:
    """A learner whose server runs a cell that keeps its kernel busy, with a file in their work folder."""
    name = "room-busy"
    client = running_hub.start_server(name)
    payload = base64.b64encode(os.urandom(WORK_FILE_BYTES)).decode()
    saved = client.server_api(
        name,
        "PUT",
        "/api/contents/weights.bin",
        json={"type": "file", "format": "base64", "content": payload},
    )
    assert saved.status_code in (200, 201), saved.text
    token = client.create_token(name, "room test")
    server = JupyterServer(f"{running_hub.url}/user/{name}/", token)
    kernel = server.request("POST", "api/kernels", json={"name": "python3"}).json()["id"]

    def busy() -> None:
        with contextlib.suppress(CellError, TimeoutError):  # the interrupt ends it
            run_code(server, kernel, BUSY_CELL, 600)

    cell = threading.Thread(target=busy, daemon=True)
    cell.start()
    try:
        yield name
    finally:
        server.request("POST", f"api/kernels/{kernel}/interrupt")
        cell.join(timeout=60)
        client.stop(name)
        client.close()


def test_status_shows_the_queued_the_busy_and_the_stopped_learner(
    running_hub: RunningHub, busy_learner: str
) -> None:
    stopped = "room-stopped"
    with running_hub.start_server(stopped) as client:
        client.stop(stopped)
    holders, queued = ["room-hold-1", "room-hold-2"], "room-queued"
    tmux = Tmux(f"{TEST_PREFIX}-status")
    try:
        with Holding(running_hub, holders):
            # Both places are held by starts that do not answer: the next learner queues.
            arrival = Arrival(running_hub, queued)
            view = until(lambda: queued_view(running_hub, queued), "the third learner queued")
            assert person(view, queued)["place"] == 1
            for holder in holders:
                assert person(view, holder)["state"] == "starting"
            totals = view["totals"]
            assert totals["start_capacity"] == 2 and totals["free_start_places"] == 0
            assert totals["queued"] >= 1 and totals["starting"] >= 2 and totals["running"] >= 1

            busy = person(view, busy_learner)
            assert busy["state"] == "running" and busy["kernels"]["busy"] >= 1
            # Docker's stats where the engine reads its cgroups, else the server's own account.
            assert busy["measured_by"] in ("engine", "server")
            quota = running_hub.settings.resources
            assert 0.05 < busy["cpu"]["used"] <= quota.cpu * 1.5 and busy["cpu"]["limit"] == quota.cpu
            assert busy["memory"]["limit"] == quota.memory and busy["memory"]["used"] >= 300 * 2**20
            assert busy["gpu"]["memory_mb"] == 2000 and busy["gpu"]["devices"][0].startswith("fake-gpu-")
            assert busy["last_activity"] and busy["since"]
            # The engine's disk usage is asked at most every 30 s.
            sized = until(
                lambda: (v := person(status(running_hub), busy_learner))["work_bytes"] and v,
                "the work folder's size",
                timeout=60,
            )
            assert sized["work_bytes"] >= WORK_FILE_BYTES

            gone = person(view, stopped)
            assert gone["state"] == "stopped" and gone["since"] and gone["cpu"] is None

            host = view["host"]
            assert host["cpus"] == os.cpu_count() and 0 < host["memory_available"] <= host["memory_total"]
            assert 0 < host["disk_free"] <= host["disk_total"]

            # The live table, in a terminal.
            if shutil.which("tmux") is None:
                pytest.fail("tmux is missing: scripts/setup-host --test installs it")
            tmux.start(
                [
                    sys.executable,
                    "-m",
                    "dlworkshop",
                    "status",
                    "-c",
                    str(running_hub.config_path),
                    "--watch",
                    "--every",
                    "1",
                ]
            )
            tmux.wait_for(rf"{queued}\s+\S\s+queued #1", "the watch shows the queue")
        # The holders' servers answer now; the queued learner is admitted, and the table follows.
        screen = tmux.wait_for(rf"{queued}\s+\S\s+(starting|running)", "the watch shows the queue move")
        assert "queued #" not in screen.split(queued)[1].splitlines()[0]
        assert re.search(rf"{busy_learner}\s+\S\s+running", screen)
        arrival.join(timeout=60)
        assert arrival.refused is None, arrival.refused
    finally:
        tmux.close()
        for name in [*holders, queued]:
            with contextlib.suppress(HubError), running_hub.login(name) as client:
                client.wait_ready(name, timeout=180)
                client.stop(name)


def test_a_helper_reads_the_room_and_opens_a_learners_jupyterlab_which_is_logged(
    running_hub: RunningHub,
) -> None:
    learner = running_hub.start_server("room-helped")
    with staff(running_hub, "helper") as helper:
        assert helper.whoami()["admin"] is False
        token = helper.create_token("helper", "status")
        view = status(running_hub, "--hub", running_hub.url, DLWORKSHOP_HUB_TOKEN=token)
        assert person(view, "room-helped")["state"] == "running"

        # Opening the learner's JupyterLab: the hub's OAuth step asks the helper to authorize, once.
        page = helper.get("/user/room-helped/lab")
        if "/hub/api/oauth2/authorize" in str(page.url):
            scopes = re.findall(r'name="scopes" value="([^"]+)"', page.text)
            xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text)
            assert xsrf, page.text[:2000]
            path = str(page.url).removeprefix(running_hub.url)
            page = helper.request(
                "POST",
                path,
                data={"_xsrf": xsrf.group(1), "scopes": scopes},
                follow_redirects=True,
                check=False,
            )
        assert page.status_code == 200 and "/user/room-helped/lab" in str(page.url)
        assert helper.server_api("room-helped", "GET", "/api/contents").json()["type"] == "directory"
        logged = until(
            lambda: re.search(
                r"dlworkshop: helper helper opened the server of room-helped .*", running_hub.log()
            ),
            "the hub logs the helper's access",
            timeout=30,
        )
        assert "room-helped" in logged.group(0)
        # Below admin: no stopping a learner's server (JupyterHub answers 404 where a scope is
        # held for other users than the one asked about), no new users.
        assert helper.request("DELETE", "/hub/api/users/room-helped/server", check=False).status_code in (
            403,
            404,
        )
        assert helper.request("POST", "/hub/api/users/room-nobody", check=False).status_code == 403
        assert person(status(running_hub), "room-helped")["state"] == "running"

    with running_hub.login("room-helped") as own:
        learners_token = own.create_token("room-helped", "try the room")
    refused = cli("status", "--hub", running_hub.url, "--json", DLWORKSHOP_HUB_TOKEN=learners_token)
    assert refused.returncode != 0 and "HTTP 403" in refused.stderr and "helper's" in refused.stderr
    assert "Traceback" not in refused.stderr
    learner.stop("room-helped")
    learner.close()


def test_after_close_learners_are_told_where_their_work_is_and_staff_still_log_in(
    running_hub: RunningHub,
) -> None:
    config = str(running_hub.config_path)
    running_hub.login("room-late").close()  # a learner who claimed their name during the day
    closed = cli("close", "-c", config, "--message", "Your zip: https://uni.example/ws/zips")
    assert closed.returncode == 0 and "logins are refused" in closed.stdout, closed.stdout + closed.stderr
    try:
        for name, secret in (("room-late", None), ("room-newcomer", "new-secret")):
            with HubClient(running_hub.url) as browser, pytest.raises(HubError) as refusal:
                browser.login(name, running_hub.access_code, secret or running_hub.secret_of(name))
            assert "ended" in refusal.value.message and "https://uni.example/ws/zips" in refusal.value.message
        with staff(running_hub, "instructor") as admin:
            assert admin.whoami()["admin"] is True
            view = status(running_hub)
            assert view["closed"]["message"] == "Your zip: https://uni.example/ws/zips"
            # The same through the hub's API, with the admin's token (a deployed hub).
            token = admin.create_token("instructor", "close")
            reopened = cli("close", "--reopen", "--hub", running_hub.url, DLWORKSHOP_HUB_TOKEN=token)
            assert reopened.returncode == 0 and "reopened" in reopened.stdout, (
                reopened.stdout + reopened.stderr
            )
            running_hub.login("room-late").close()
            again = cli(
                "close", "--hub", running_hub.url, "--message", "Zips by email.", DLWORKSHOP_HUB_TOKEN=token
            )
            assert again.returncode == 0, again.stdout + again.stderr
            with HubClient(running_hub.url) as browser, pytest.raises(HubError, match="Zips by email"):
                browser.login("room-late", running_hub.access_code, running_hub.secret_of("room-late"))
    finally:
        reopened = cli("close", "--reopen", "-c", config)
        assert reopened.returncode == 0, reopened.stdout + reopened.stderr
    running_hub.login("room-late").close()
