"""Faults injected into a running workshop, each ending with the learners it hit at work again.

Each test records its figures (the learners it hit, how many ended with a working server and their
files intact, the seconds until they did) in reports/faults.json through `fault_results`; the
README's fault table quotes them. Times are measured, never asserted.

On the shared test hub: the hub's process killed (SIGKILL) in the middle of a 10-learner rush, a
learner's container killed, a learner's memory hog and fork bomb. The hub kill runs after every
other test of the shared hub (marker `recreates_shared_hub`); Docker's restart policy brings the
same hub back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest

from dlworkshop import contract
from dlworkshop.hubclient import HubClient
from dlworkshop.loadtest import DEFAULT_CODE, Credentials, LearnerRun, simulate_learner
from tests.fixtures.faults import FaultResults, seconds
from tests.fixtures.hub import RunningHub
from tests.fixtures.images import TEST_PREFIX

pytestmark = [pytest.mark.docker, pytest.mark.hub, pytest.mark.faults]

# What the hub logs when it gives up on a learner's start.
GIVEN_UP = re.compile(
    r"never showed up|does not appear to be running|failed to start|Unhandled error starting|giving up",
    re.IGNORECASE,
)
# A file each learner left in their work folder the day before.
YESTERDAY = "yesterday.txt"


def hub_container(hub: RunningHub) -> Any:
    return docker.from_env().containers.get(hub.settings.hub.container_name)


def hub_log(hub: RunningHub) -> str:
    return hub_container(hub).logs().decode(errors="replace")


def admin_client(hub: RunningHub) -> HubClient:
    """With the hub's own prewarm service token (on the hub volume): lists and stops any server."""
    token = hub_container(hub).exec_run(["cat", f"{contract.HUB_DATA}/{contract.PREWARM_TOKEN_FILE}"])
    assert token.exit_code == 0, token.output
    return HubClient(hub.url, token=token.output.decode().strip())


def leave_yesterdays_work(hub: RunningHub, names: list[str]) -> None:
    """Each learner's work folder as a first day left it: a file of theirs."""
    volumes = {
        contract.work_volume_name(hub.settings.hub.container_name, name): f"/w/{name}" for name in names
    }
    docker.from_env().containers.run(
        hub.settings.image.reference,
        [
            "bash",
            "-c",
            f'for d in /w/*; do echo "work of ${{d#/w/}}" > $d/{YESTERDAY}; done; chown -R 1000:1000 /w',
        ],
        user="root",
        entrypoint=[],
        volumes={volume: {"bind": path, "mode": "rw"} for volume, path in volumes.items()},
        network_mode="none",
        remove=True,
    )


def yesterdays_work(hub: RunningHub, name: str, token: str) -> str:
    """The learner's file, read through their own server (as JupyterLab's file browser does)."""
    with HubClient(hub.url, token=token) as learner:
        answer = learner.request("GET", f"/user/{name}/api/contents/{YESTERDAY}", check=False)
    return (
        answer.json().get("content", "").strip()
        if answer.status_code == 200
        else f"HTTP {answer.status_code}"
    )


@dataclass
class Room:
    """Each learner's server as the hub and the engine see it."""

    ready: list[str] = field(default_factory=list)
    starting: list[str] = field(default_factory=list)  # admitted: the engine has its container
    queued: list[str] = field(default_factory=list)  # asked for, no container yet

    @property
    def asked(self) -> int:
        return len(self.ready) + len(self.starting) + len(self.queued)


def look_at_the_room(hub: RunningHub, admin: HubClient, names: list[str]) -> Room:
    containers = {
        container.labels.get(contract.LABEL_USER)
        for container in docker.from_env().containers.list(
            all=True,
            filters={"label": f"{contract.LABEL_HUB}={hub.settings.hub.container_name}"},
            ignore_removed=True,
        )
    }
    seen = Room()
    for user in admin.request("GET", "/hub/api/users?state=active").json():
        server = user.get("servers", {}).get("")
        if user["name"] not in names or not server:
            continue
        if server.get("ready"):
            seen.ready.append(user["name"])
        elif user["name"] in containers:
            seen.starting.append(user["name"])
        else:
            seen.queued.append(user["name"])
    return seen


@contextlib.contextmanager
def host_processes(image: str) -> Iterator[Any]:
    """A root shell in the host's process namespace (a container of the hub image), to kill the
    hub's process as the kernel's OOM killer or a crash would. `docker kill` would not do: Docker
    counts it as a stop and does not restart the container."""
    client = docker.from_env()
    name = f"{TEST_PREFIX}-fault-killer"
    with contextlib.suppress(docker.errors.NotFound):
        client.containers.get(name).remove(force=True)
    helper = client.containers.run(
        image,
        ["sleep", "infinity"],
        name=name,
        pid_mode="host",
        user="root",
        network_mode="none",
        detach=True,
    )
    try:
        yield helper
    finally:
        helper.remove(force=True)


def kill_the_hub(hub: RunningHub, host: Any) -> None:
    container = hub_container(hub)
    killed = host.exec_run(["python3", "-c", f"import os; os.kill({container.attrs['State']['Pid']}, 9)"])
    assert killed.exit_code == 0, killed.output


def wait_until_back(hub: RunningHub, restarts_before: int, timeout: float = 300) -> None:
    """Docker restarted the hub's container (its restart policy) and the hub answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        container = hub_container(hub)
        if container.attrs["RestartCount"] > restarts_before and container.status == "running":
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{hub.url}/hub/health", timeout=2).status_code == 200:
                    return
        time.sleep(0.2)
    raise AssertionError(f"the hub was not back within {timeout} s:\n{hub_log(hub)[-3000:]}")


def log_in_in_the_browser(page: Any, hub: RunningHub, name: str) -> None:
    page.goto(f"{hub.url}/hub/login")
    page.fill("#username_input", name)
    page.fill("#password_input", hub.access_code)
    page.fill("#secret_input", hub.secret_of(name))
    page.click("#login_submit")


def run_a_cell_in_jupyterlab(page: Any, hub: RunningHub, name: str) -> str:
    """A notebook the learner opens in JupyterLab and runs; returns its output."""
    notebook = {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "id": "restart-check",
                "metadata": {},
                "outputs": [],
                "source": ['print("ran after the restart:", 6 * 7)'],
            }
        ],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    xsrf = next(
        cookie["value"]
        for cookie in page.context.cookies()
        if cookie["name"] == "_xsrf" and cookie["path"].startswith(f"/user/{name}")
    )
    saved = page.request.put(
        f"{hub.url}/user/{name}/api/contents/restart-check.ipynb",
        data=json.dumps({"type": "notebook", "content": notebook}),
        headers={"X-XSRFToken": xsrf, "Content-Type": "application/json"},
    )
    assert saved.ok, saved.text()
    page.goto(f"{hub.url}/user/{name}/lab/tree/restart-check.ipynb")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
    # JupyterLab may ask which kernel (the learner presses Select, as on any first notebook).
    choose = page.get_by_role("button", name="Select", exact=True)
    with contextlib.suppress(Exception):
        choose.wait_for(timeout=10_000)
        choose.click()
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
    output = page.locator(".jp-OutputArea-output", has_text="ran after the restart: 42")
    output.wait_for(timeout=180_000)
    return output.inner_text()


# --- (a) the hub killed during the 09:00 rush ---------------------------------------------------

RUSH = [f"rush-{number:02d}" for number in range(1, 10)]  # the load test's learners
IN_A_BROWSER = "rush-web"  # the tenth, in Chromium
RAMP = 2.0  # seconds over which the load test's learners arrive (the browser's arrives meanwhile)


@pytest.mark.recreates_shared_hub
@pytest.mark.browser
def test_the_hub_killed_in_the_middle_of_a_rush_strands_nobody(
    running_hub: RunningHub,
    browser: Any,
    fault_results: FaultResults,
    tmp_path: Path,
) -> None:
    hub, everyone = running_hub, [*RUSH, IN_A_BROWSER]
    leave_yesterdays_work(hub, everyone)
    admin = admin_client(hub)
    restarts_before = hub_container(hub).attrs["RestartCount"]
    runs: list[LearnerRun] = []
    started: list[tuple[str, str]] = []  # (name, token) of the load test's learners, after login
    clock: dict[str, float] = {}

    def load_test() -> None:
        async def arrive() -> list[LearnerRun]:
            clock["rush"] = time.monotonic()
            arrivals = [RAMP * index / (len(RUSH) - 1) for index in range(len(RUSH))]
            return await asyncio.gather(
                *(
                    simulate_learner(
                        hub.url,
                        Credentials(name, hub.access_code, hub.secret_of(name)),
                        at,
                        DEFAULT_CODE,
                        timeout=900,
                        started=started,
                    )
                    for name, at in zip(RUSH, arrivals, strict=True)
                )
            )

        runs.extend(asyncio.run(arrive()))

    rush = threading.Thread(target=load_test, name="rush")
    page = browser.new_page()
    try:
        with host_processes(hub.settings.hub.image) as host:
            rush.start()
            log_in_in_the_browser(page, hub, IN_A_BROWSER)
            page.wait_for_url(f"**/hub/spawn-pending/{IN_A_BROWSER}**", timeout=120_000)
            # The moment of the issue: everyone has asked, some servers are starting, some queued.
            deadline = time.monotonic() + 180
            while True:
                at_kill = look_at_the_room(hub, admin, everyone)
                everyone_asked = at_kill.asked == len(everyone)
                if everyone_asked and at_kill.queued and (at_kill.starting or at_kill.ready):
                    break
                assert time.monotonic() < deadline, f"the rush never had starts queued: {at_kill}"
                time.sleep(0.1)
            assert "/hub/spawn-pending/" in page.url, page.url
            kill_the_hub(hub, host)
            killed = time.monotonic()
        wait_until_back(hub, restarts_before)
        hub_back = time.monotonic() - killed
        # The browser was left on the spawn page: it reconnects and lands in JupyterLab by itself.
        page.wait_for_url(f"**/user/{IN_A_BROWSER}/lab**", timeout=900_000)
        browser_in_lab = time.monotonic() - killed
        run_a_cell_in_jupyterlab(page, hub, IN_A_BROWSER)
        browser_ran_code = time.monotonic() - killed
        browser_file = page.request.get(f"{hub.url}/user/{IN_A_BROWSER}/api/contents/{YESTERDAY}").json()
        rush.join(timeout=1200)
        assert not rush.is_alive(), "the load test's learners did not finish within 20 minutes"
        # Their work folders, as they left them, through their servers.
        files = {name: yesterdays_work(hub, name, token) for name, token in started}
        files[IN_A_BROWSER] = browser_file.get("content", "").strip()
    finally:
        page.screenshot(path=str(tmp_path / "rush-web.png"), full_page=True)
        (tmp_path / "hub.log").write_text(hub_log(hub))
        page.close()
        for name in everyone:
            with contextlib.suppress(Exception):
                admin.stop(name, wait=None)
        admin.close()

    log = hub_log(hub)
    failed = {run.name: run.error for run in runs if not run.ok}
    assert not failed, f"learners of the load test did not run code: {failed}\n{log[-4000:]}"
    assert len(runs) == len(RUSH)
    # Nobody's start was given up on, and every start the kill caught was adopted or resumed.
    assert not GIVEN_UP.search(log), GIVEN_UP.findall(log)
    adopted = sorted(
        set(re.findall(r"dlworkshop: ([\w-]+), started before the hub restarted, answers: adopted", log))
    )
    resumed = sorted(set(re.findall(r"the hub restarted during ([\w-]+)'s start", log)))
    caught = sorted(at_kill.starting + at_kill.queued)
    assert sorted(adopted + resumed) == caught, (adopted, resumed, at_kill)
    # No learner asked twice: the load test's clients asked once (the resumed starts are asked by
    # the hub itself, from 127.0.0.1), the browser's page once.
    for name in RUSH:
        asked = re.findall(rf"POST /hub/api/users/{name}/server \({name}@([\d.]+)\)", log)
        assert len([address for address in asked if address != "127.0.0.1"]) == 1, (name, asked)
    spawns = [
        line
        for line in log.splitlines()
        if re.search(r"GET /hub/spawn[/? ]", line) and f"({IN_A_BROWSER}@" in line
    ]
    assert len(spawns) == 1, spawns
    intact = [name for name, content in files.items() if content == f"work of {name}"]
    assert len(intact) == len(everyone), files

    # Seconds from the kill until each learner's first cell ran (learners whose cell ran before it
    # were not hit).
    after_kill = {run.name: clock["rush"] + run.arrival + sum(run.steps.values()) - killed for run in runs}
    after_kill[IN_A_BROWSER] = browser_ran_code
    hit = {name: round(value, 1) for name, value in after_kill.items() if value > 0}
    fault_results.record(
        "hub_killed_during_rush",
        fault="the hub's process killed (SIGKILL) during a 10-learner rush; Docker's restart policy restarts it",
        learners=len(everyone),
        at_the_kill={
            "ready": len(at_kill.ready),
            "starting": len(at_kill.starting),
            "queued": len(at_kill.queued),
        },
        ended_working_with_files_intact=len(intact),
        adopted=len(adopted),
        resumed=len(resumed),
        hub_answering_again_after_s=round(hub_back, 1),
        browser_in_jupyterlab_after_s=round(browser_in_lab, 1),
        seconds_from_the_kill_to_running_code=seconds(hit.values()),
        per_learner_s=hit,
    )
