"""Faults injected into a running workshop, each ending with the learners it hit at work again.

Each test asserts what must hold for the learners it hit (a working server, their files intact, and
per fault who may still save, log in or start) and records those outcomes and the seconds until
they worked again in reports/faults.json through `fault_results`; the README's fault table is made
from a kept run's file, its words from the outcomes (tests/fixtures/faults.py). Times are measured,
never asserted.

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
from dlworkshop.clients.loadtest import DEFAULT_CODE, Credentials, LearnerRun, simulate_learner
from dlworkshop.clients.smoke.jupyter import JupyterServer, run_code
from dlworkshop.hubclient import HubClient
from dlworkshop.settings import load_settings
from tests.fixtures.ansible import ACCESS_CODE as DEPLOY_ACCESS_CODE
from tests.fixtures.ansible import DeployHost
from tests.fixtures.faults import FaultResults, seconds
from tests.fixtures.hub import RunningHub
from tests.fixtures.images import TEST_PREFIX

pytestmark = [pytest.mark.docker, pytest.mark.hub, pytest.mark.faults]

# What the hub logs when it gives up on a learner's start (JupyterHub's words, and the admitted
# start's own bound: hub/spawning.py StartTimedOut).
GIVEN_UP = re.compile(
    r"never showed up|does not appear to be running|failed to start|Unhandled error starting|giving up"
    r"|did not answer within",
    re.IGNORECASE,
)
# A file each learner left in their work folder the day before.
YESTERDAY = "yesterday.txt"


def hub_container(hub: RunningHub) -> Any:
    return docker.from_env().containers.get(hub.settings.hub.container_name)


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
    raise AssertionError(f"the hub was not back within {timeout} s:\n{hub.log()[-3000:]}")


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


# --- a learner at work, and faults that hit one learner -----------------------------------------


@dataclass
class Learner:
    """A learner logged in (cookies, as their browser) with a server, an API token and a kernel."""

    name: str
    browser: HubClient
    server: JupyterServer
    kernel: str = ""

    def run(self, code: str, timeout: float = 120) -> str:
        if not self.kernel:
            self.kernel = self.server.request("POST", "api/kernels", json={"name": "python3"}).json()["id"]
        return run_code(self.server, self.kernel, code, timeout)

    def save(self, path: str, text: str) -> None:
        self.server.request(
            "PUT", f"api/contents/{path}", json={"type": "file", "format": "text", "content": text}
        )

    def read(self, path: str) -> str:
        try:
            return self.server.request("GET", f"api/contents/{path}").json().get("content", "")
        except httpx.HTTPError as exc:
            return f"not readable: {exc}"

    def run_and_forget(self, code: str, timeout: float = 300) -> None:
        """A cell whose end (if any) nobody waits for: the kernel may die running it."""
        with contextlib.suppress(Exception):
            self.run(code, timeout)

    def start_again(self, timeout: float = 300) -> None:
        """The learner's Start (JupyterLab's Restart, or the hub's home page): the spawn page until
        ready, then a new kernel in the new server."""
        self.browser.get(f"/hub/spawn/{self.name}")
        assert self.browser.follow_progress(self.name, timeout=timeout)[-1].get("ready")
        self.kernel = ""

    def timed(self, code: str) -> float:
        began = time.monotonic()
        self.run(code)
        return time.monotonic() - began


def at_work(hub: RunningHub, name: str) -> Learner:
    browser = hub.start_server(name)
    token = browser.create_token(name, "dlworkshop fault test")
    return Learner(name, browser, JupyterServer(f"{hub.url}/user/{name}/", token))


def status_of(learner: Learner) -> int | None:
    """What the learner's JupyterLab gets when it asks its server (None: no answer within 5 s)."""
    cookies = {cookie.name: cookie.value for cookie in learner.browser.cookies.jar}
    try:
        return httpx.get(
            f"{learner.browser.url}/user/{learner.name}/api/status",
            cookies=cookies,
            timeout=5,
            follow_redirects=True,
            verify=learner.server.verify,
        ).status_code
    except httpx.HTTPError:
        return None


def cgroup_count(container: Any, event: str) -> int:
    """A learner container's count of `event` (oom_kill) from its memory cgroup, v2 or v1."""
    read = container.exec_run(
        [
            "sh",
            "-c",
            "cat /sys/fs/cgroup/memory.events 2>/dev/null || cat /sys/fs/cgroup/memory/memory.oom_control",
        ],
        user="root",
    )
    found = re.search(rf"^{event} (\d+)", read.output.decode(), re.MULTILINE)
    return int(found.group(1)) if found else 0


def test_a_learner_whose_container_is_killed_starts_again_with_their_files(
    running_hub: RunningHub, fault_results: FaultResults
) -> None:
    ada = at_work(running_hub, "crash-ada")
    ada.save("before-the-crash.txt", "saved before the crash")
    assert ada.run("print(6 * 7)").strip() == "42"
    running_hub.container(ada.name).kill()  # SIGKILL: the server's processes are gone
    killed = time.monotonic()
    # JupyterLab keeps asking its server (the proxy's requests to the gone address hang) until the
    # hub's poll of the engine (every 30 s) finds it gone; then the hub answers 424, on which
    # JupyterLab offers to restart it: the learner's one click.
    while status_of(ada) != 424:
        assert time.monotonic() - killed < 300, "the hub did not notice the killed container"
        time.sleep(0.5)
    noticed = time.monotonic() - killed
    ada.start_again()  # JupyterLab's Restart button
    assert ada.run("print(6 * 7)").strip() == "42"
    back = time.monotonic() - killed
    intact = ada.read("before-the-crash.txt") == "saved before the crash"
    assert intact
    ada.browser.stop(ada.name)
    fault_results.record(
        "learner_container_killed",
        fault="a learner's container killed (SIGKILL); the learner presses JupyterLab's Restart",
        learners=1,
        ended_working_with_files_intact=int(intact),
        hub_noticed_after_s=round(noticed, 1),
        seconds_until_working=seconds([back]),
        counted_from="the kill",
    )


HOG = "import numpy\nhog = numpy.ones({elements})\nprint('not reached')"
FORK_BOMB = """\
import os, time
deadline, me = time.time() + {seconds}, os.getpid()
while time.time() < deadline:
    try:
        os.fork()
    except OSError:  # the limit: wait (a real bomb spins; its CPU quota bounds that)
        time.sleep(0.5)
if os.getpid() != me:
    os._exit(0)
print("bomb over")
"""


def test_a_learners_memory_hog_kills_their_kernel_only(
    running_hub: RunningHub, fault_results: FaultResults
) -> None:
    hog, neighbour = at_work(running_hub, "hog-ada"), at_work(running_hub, "hog-bo")
    for learner in (hog, neighbour):
        learner.save("mine.txt", f"work of {learner.name}")
    before = [neighbour.timed("print(sum(range(10**6)))") for _ in range(3)]
    hog.run("kept = 41")
    limit = running_hub.settings.resources.memory
    container = running_hub.container(hog.name)
    kills_before = cgroup_count(container, "oom_kill")
    elements = (limit + 512 * 2**20) // 8
    # Nobody waits for this cell: its kernel dies running it (the thread ends with its timeout).
    allocating = threading.Thread(
        target=hog.run_and_forget, args=(HOG.format(elements=elements), 60), daemon=True
    )
    allocating.start()
    began = time.monotonic()
    while cgroup_count(container, "oom_kill") == kills_before:
        assert time.monotonic() - began < 300, "the memory hog was not stopped"
        time.sleep(0.2)
    killed = time.monotonic()
    during = [neighbour.timed("print(sum(range(10**6)))") for _ in range(3)]
    # Jupyter restarts the learner's kernel: the same kernel answers again, its variables gone.
    while True:
        try:
            answer = hog.run("print('kept' in globals())", timeout=15).strip()
            break
        except Exception:
            assert time.monotonic() - killed < 300, "the learner's kernel did not come back"
            time.sleep(1)
    back = time.monotonic() - killed
    assert answer == "False"  # a new kernel process, in the same server
    assert container.reload() is None and container.status == "running"
    intact = [
        learner.name for learner in (hog, neighbour) if learner.read("mine.txt") == f"work of {learner.name}"
    ]
    assert len(intact) == 2
    for learner in (hog, neighbour):
        learner.browser.stop(learner.name)
    fault_results.record(
        "learner_memory_hog",
        fault=f"a learner's kernel allocates {elements * 8 / 2**30:.1f} GiB with a {limit / 2**30:.0f} GiB memory limit",
        learners=2,
        ended_working_with_files_intact=len(intact),
        what_happened="the kernel's memory cgroup killed the kernel; Jupyter restarted it; the server and the neighbour carried on",
        seconds_until_working=seconds([back]),
        counted_from="the kernel's kill",
        neighbour_cell_s={"before": seconds(before), "during": seconds(during)},
    )


def test_a_learners_fork_bomb_stops_at_their_process_limit(
    running_hub: RunningHub, fault_results: FaultResults
) -> None:
    bomber, neighbour = at_work(running_hub, "bomb-ada"), at_work(running_hub, "bomb-bo")
    for learner in (bomber, neighbour):
        learner.save("mine.txt", f"work of {learner.name}")
    before = [neighbour.timed("print(sum(range(10**6)))") for _ in range(3)]
    container = running_hub.container(bomber.name)
    limit = running_hub.settings.resources.pids
    # Every process forks until the learner's process limit; bounded (children end after 120 s)
    # in case the server's stop below did not end them.
    bombing = threading.Thread(
        target=bomber.run_and_forget, args=(FORK_BOMB.format(seconds=120), 150), daemon=True
    )
    bombing.start()
    began = time.monotonic()
    # The limit counts threads (a kernel has several): count them from the host (an exec into the
    # container would need a process of its own).
    while len(container.top(ps_args="-e -L -o pid,lwp")["Processes"] or []) < limit - 5:
        assert time.monotonic() - began < 120, "the fork bomb never reached the process limit"
        time.sleep(0.5)
    full = time.monotonic()
    during = [neighbour.timed("print(sum(range(10**6)))") for _ in range(3)]
    # The learner (or a helper) restarts the server from the hub's home page: stop, start.
    bomber.browser.stop(bomber.name, wait=300)
    bomber.start_again()
    assert bomber.run("print(6 * 7)").strip() == "42"
    back = time.monotonic() - full
    intact = [
        learner.name
        for learner in (bomber, neighbour)
        if learner.read("mine.txt") == f"work of {learner.name}"
    ]
    assert len(intact) == 2
    for learner in (bomber, neighbour):
        learner.browser.stop(learner.name)
    fault_results.record(
        "learner_fork_bomb",
        fault=f"a learner's kernel forks without end; the learner's process limit is {limit}",
        learners=2,
        ended_working_with_files_intact=len(intact),
        what_happened="fork failed at the limit in that container only; the neighbour carried on; "
        "the learner restarted their server from the hub's home page",
        seconds_until_working=seconds([back]),
        counted_from="the process limit reached",
        neighbour_cell_s={"before": seconds(before), "during": seconds(during)},
    )


# --- (a) the hub killed during the 09:00 rush ---------------------------------------------------

RUSH = [f"rush-{number:02d}" for number in range(1, 10)]  # the load test's learners
IN_A_BROWSER = "rush-web"  # the tenth, in Chromium
RAMP = 2.0  # seconds over which the load test's learners arrive (the browser's arrives meanwhile)


@pytest.mark.recreates_shared_hub
@pytest.mark.browser
# Ten starts at two at a time take minutes on two busy cores; a learner left waiting fails the
# test within the bounds below (each learner 10 minutes), the whole test within 25.
@pytest.mark.timeout(1500)
def test_the_hub_killed_in_the_middle_of_a_rush_strands_nobody(
    running_hub: RunningHub,
    browser: Any,
    fault_results: FaultResults,
    tmp_path: Path,
) -> None:
    hub, everyone = running_hub, [*RUSH, IN_A_BROWSER]
    # The shared hub's log holds every earlier test's; this test reads what its rush made it say.
    began = time.time() - 1
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
                        timeout=600,
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
        # Back at the first try: a hub that exits again after taking over the interrupted starts
        # (a stale proxy pid file did) leaves the next one nobody to ask again for.
        restarts = hub_container(hub).attrs["RestartCount"] - restarts_before
        assert restarts == 1, f"the hub restarted {restarts} times:\n{hub.log()[-4000:]}"
        # The browser was left on the spawn page: it reconnects and lands in JupyterLab by itself.
        page.wait_for_url(f"**/user/{IN_A_BROWSER}/lab**", timeout=600_000)
        browser_in_lab = time.monotonic() - killed
        run_a_cell_in_jupyterlab(page, hub, IN_A_BROWSER)
        browser_ran_code = time.monotonic() - killed
        browser_file = page.request.get(f"{hub.url}/user/{IN_A_BROWSER}/api/contents/{YESTERDAY}").json()
        rush.join(timeout=600)
        assert not rush.is_alive(), "the load test's learners did not finish within 10 minutes"
        # Their work folders, as they left them, through their servers.
        files = {name: yesterdays_work(hub, name, token) for name, token in started}
        files[IN_A_BROWSER] = browser_file.get("content", "").strip()
    finally:
        page.screenshot(path=str(tmp_path / "rush-web.png"), full_page=True)
        (tmp_path / "hub.log").write_text(hub.log(since=began))
        page.close()
        for name in everyone:
            with contextlib.suppress(Exception):
                admin.stop(name, wait=None)
        admin.close()

    log = hub.log(since=began)
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
        seconds_until_working=seconds(hit.values()),
        counted_from="the kill",
        per_learner_s=hit,
    )


# --- on the deploy test host: its own Docker engine and its own disk ------------------------------
# Never against the engine this test run uses: the deployed hub runs inside the test host (a VM's
# stand-in with a Docker engine of its own, tests/fixtures/ansible.py), after the deploy tests.

DEPLOYED_HUB = "dlworkshop-hub"  # the deploy's hub container, inside the test host


def deployed_learner(host: DeployHost, name: str, timeout: float = 600) -> Learner:
    """A learner logged in at the deployed hub (over its TLS), their server started and answering."""
    tls = host.tls_context()
    browser = HubClient(host.url, verify=tls)
    browser.get(browser.login(name, DEPLOY_ACCESS_CODE, f"secret-of-{name}"))  # starts the server
    assert browser.follow_progress(name, timeout=timeout)[-1].get("ready"), f"{name}'s server did not start"
    token = browser.create_token(name, "dlworkshop fault test")
    return Learner(name, browser, JupyterServer(f"{host.url}/user/{name}/", token, verify=tls))


def until(condition: Any, what: str, timeout: float = 600, every: float = 1) -> float:
    """Seconds until `condition()` is true (exceptions count as false)."""
    began = time.monotonic()
    while True:
        with contextlib.suppress(Exception):
            if condition():
                return time.monotonic() - began
        assert time.monotonic() - began < timeout, f"{what}: not within {timeout:.0f} s"
        time.sleep(every)


def answers(learner: Learner, code: str, expected: str) -> bool:
    return learner.run(code, timeout=20).strip() == expected


def engine_state(host: DeployHost) -> dict[str, str]:
    """What an engine restart may change on the host: containers (their IDs and starts), the
    firewall rules learners are held by."""
    return {
        "containers": host.run(
            "docker ps -q | xargs -r docker inspect -f '{{.Name}} {{.Id}} {{.State.StartedAt}}' | sort"
        ),
        "firewall": host.run("iptables -S DOCKER-USER; iptables -S INPUT"),
    }


@pytest.mark.ansible
@pytest.mark.slow
def test_the_engine_restarted_under_running_learners_keeps_their_kernels(
    deployed: DeployHost, fault_results: FaultResults
) -> None:
    """The deploy's engine (live-restore on): containers run on while dockerd restarts."""
    assert deployed.run("docker info -f '{{.LiveRestoreEnabled}}'").strip() == "true"
    ada = deployed_learner(deployed, "engine-ada")
    ada.save("mine.txt", "work of engine-ada")
    ada.run("kept = 41")
    before = engine_state(deployed)
    restarted = time.monotonic()
    deployed.run("systemctl restart docker")
    engine_back = until(lambda: deployed.run("docker info -f '{{.ID}}'").strip(), "the engine answers")
    until(lambda: answers(ada, "print(kept + 1)", "42"), "ada's kernel answers", every=0.5)
    back = time.monotonic() - restarted
    after = engine_state(deployed)
    assert after["containers"] == before["containers"]  # the hub and ada's server never stopped
    assert after["firewall"] == before["firewall"]
    intact = ada.read("mine.txt") == "work of engine-ada"
    assert intact
    # The hub starts servers on the restarted engine.
    bo = deployed_learner(deployed, "engine-bo")
    assert answers(bo, "print(6 * 7)", "42")
    for learner in (ada, bo):
        learner.browser.stop(learner.name)
    fault_results.record(
        "engine_restarted_live_restore_on",
        fault="the Docker engine restarted (systemctl restart docker) with a learner at work; "
        "live-restore on, as the deploy sets it (`up` and `check` warn where it is off)",
        learners=1,
        ended_working_with_files_intact=int(intact),
        what_survives="everything: the hub, the learner's container, server and kernel (its variables), "
        "the firewall rules; the hub starts new servers once the engine answers",
        engine_answering_after_s=round(engine_back, 1),
        seconds_until_working=seconds([back]),
        counted_from="`systemctl restart docker` (it returns once the engine is back)",
    )


@pytest.mark.ansible
@pytest.mark.slow
def test_without_live_restore_an_engine_restart_stops_the_learners_servers_and_keeps_their_files(
    deployed: DeployHost, fault_results: FaultResults, tmp_path: Path
) -> None:
    """Why the deploy turns live-restore on: the same restart with it off."""
    deployed_settings = tmp_path / "daemon.json"
    deployed_settings.write_text(deployed.run("cat /etc/docker/daemon.json"))
    ada = deployed_learner(deployed, "nolive-ada")
    ada.save("mine.txt", "work of nolive-ada")
    ada.run("kept = 41")
    try:
        deployed.run(
            "python3 -c \"import json; p='/etc/docker/daemon.json'; d=json.load(open(p)); "
            "d['live-restore']=False; open(p,'w').write(json.dumps(d))\" && systemctl reload docker"
        )
        assert deployed.run("docker info -f '{{.LiveRestoreEnabled}}'").strip() == "false"
        restarted = time.monotonic()
        deployed.run("systemctl restart docker")
        hub_back = until(
            lambda: ada.browser.request("GET", "/hub/health").status_code == 200, "the hub answers"
        )
        # The learner's JupyterLab finds its server gone (the hub answers 424) and offers a restart.
        until(lambda: status_of(ada) == 424, "the hub says ada's server is not running")
        noticed = time.monotonic() - restarted
        ada.start_again(timeout=600)
        kept = ada.run("print('kept' in globals())").strip()
        back = time.monotonic() - restarted
    finally:
        deployed.put(deployed_settings, "/etc/docker/daemon.json")  # the deploy's, as it was
        deployed.run("systemctl reload docker")
    assert deployed.run("docker info -f '{{.LiveRestoreEnabled}}'").strip() == "true"
    assert kept == "False"  # a new server: the kernel's variables are gone
    intact = ada.read("mine.txt") == "work of nolive-ada"
    assert intact
    ada.browser.stop(ada.name)
    fault_results.record(
        "engine_restarted_live_restore_off",
        fault="the same engine restart with live-restore off (Docker's default)",
        learners=1,
        ended_working_with_files_intact=int(intact),
        what_survives="the files (volumes) and the hub's state; the engine stops every container: the hub "
        "comes back by its restart policy, learners' servers are gone and each learner presses Restart",
        hub_answering_after_s=round(hub_back, 1),
        learner_told_after_s=round(noticed, 1),
        seconds_until_working=seconds([back]),
        counted_from="`systemctl restart docker`",
    )


def data_root_use(host: DeployHost) -> tuple[int, int]:
    """(used, usable) bytes of the file system of the host's Docker data root, as `df` counts its
    use: the blocks ext4 keeps for root (5%) are not usable by learners, nor counted."""
    used, available = host.run("df -B1 --output=used,avail /var/lib/docker | tail -1").split()
    return int(used), int(used) + int(available)


FILL = "/var/lib/docker/dlworkshop-fault-fill"


@pytest.mark.ansible
@pytest.mark.slow
def test_with_the_host_disk_at_95_percent_learners_at_work_carry_on_and_starts_wait_for_space(
    deployed: DeployHost, fault_results: FaultResults
) -> None:
    if deployed.unbounded_disk:
        pytest.skip(f"the test host's disk is this machine's, not filled: {deployed.unbounded_disk}")
    ada = deployed_learner(deployed, "disk-ada")
    ada.save("mine.txt", "work of disk-ada")
    used, usable = data_root_use(deployed)
    try:
        deployed.run(f"fallocate -l {max(int(usable * 0.95) - used, 1)} {FILL}")
        used, usable = data_root_use(deployed)
        ada.save("saved-at-95.txt", "still saving")
        ada_works = answers(ada, "print(6 * 7)", "42") and ada.read("saved-at-95.txt") == "still saving"
        # A learner arriving now: the hub refuses the start below resources.disk_free_min, saying why.
        bo = HubClient(deployed.url, verify=deployed.tls_context())
        bo.get(bo.login("disk-bo", DEPLOY_ACCESS_CODE, "secret-of-disk-bo"))
        refusal = bo.follow_progress("disk-bo", timeout=300)[-1]
    finally:
        deployed.run(f"rm -f {FILL}")
    freed = time.monotonic()
    # A helper frees space; the learner presses Start again.
    bo.get("/hub/spawn/disk-bo")
    assert bo.follow_progress("disk-bo", timeout=600)[-1].get("ready")
    bo_learner = Learner(
        "disk-bo",
        bo,
        JupyterServer(
            f"{deployed.url}/user/disk-bo/",
            bo.create_token("disk-bo", "dlworkshop fault test"),
            verify=deployed.tls_context(),
        ),
    )
    assert answers(bo_learner, "print(6 * 7)", "42")
    bo_back = time.monotonic() - freed
    assert ada_works
    intact = ada.read("mine.txt") == "work of disk-ada"
    assert intact
    # Below resources.disk_free_min free the start is refused, saying why; above it, it goes on.
    if usable - used < load_settings(deployed.config).resources.disk_free_min:
        assert refusal.get("failed") and "low on disk space" in refusal.get("message", ""), refusal
    else:
        assert refusal.get("ready"), refusal
    for learner in (ada, bo_learner):
        learner.browser.stop(learner.name)
    fault_results.record(
        "host_disk_95_percent",
        fault=f"the test host's disk (its Docker data root, {usable / 2**30:.1f}G usable) filled to "
        f"{100 * used / usable:.0f}%",
        learners=2,
        ended_working_with_files_intact=1 + int(intact),
        learner_at_work="ran code and saved files throughout",
        new_start_while_full=refusal.get("message", ""),
        seconds_until_working=seconds([bo_back]),
        counted_from="space freed (the learner who arrived meanwhile presses Start again)",
    )


FILL_THE_WORK_FOLDER = """\
import errno, os
written, chunk, number, why = 0, 256 * 2**20, 0, ""
while chunk >= 2**20:  # 256M at a time, then smaller, until the file system says no
    path = f"fill-{number}.bin"
    number += 1
    handle = os.open(path, os.O_CREAT | os.O_WRONLY)
    try:
        os.posix_fallocate(handle, 0, chunk)
        written += chunk
    except OSError as error:
        os.unlink(path)
        chunk //= 4
        why = errno.errorcode[error.errno]
    finally:
        os.close(handle)
last = open("fill-last.bin", "wb", buffering=0)  # and the last bytes, as a program writing would
try:
    while True:
        written += last.write(bytes(4096))
except OSError as error:
    why = errno.errorcode[error.errno]
finally:
    last.close()
print(written, why)
"""


@pytest.mark.ansible
@pytest.mark.slow
def test_a_learner_filling_their_work_folder_until_it_says_no(
    deployed: DeployHost, fault_results: FaultResults
) -> None:
    """The learner's work-folder quota stops the writes with `No space left on device` in their
    notebook; meanwhile a neighbour saves and a newcomer logs in; once the files are deleted, the
    writer works again."""
    if deployed.unbounded_disk:
        pytest.skip(f"the test host's disk is this machine's, not filled: {deployed.unbounded_disk}")
    filler, neighbour = deployed_learner(deployed, "fill-ada"), deployed_learner(deployed, "fill-bo")
    for learner in (filler, neighbour):
        learner.save("mine.txt", f"work of {learner.name}")
    written, why = filler.run(FILL_THE_WORK_FOLDER, timeout=600).split()
    used, usable = data_root_use(deployed)
    # At that moment: can the neighbour save, and can a new learner log in?
    try:
        neighbour.save("while-full.txt", "saved while the other filled their folder")
        neighbour_saved = "yes"
    except httpx.HTTPError as exc:
        neighbour_saved = f"no: {exc}"
    try:
        HubClient(deployed.url, verify=deployed.tls_context()).login(
            "fill-cy", DEPLOY_ACCESS_CODE, "secret-of-fill-cy"
        )
        newcomer_logged_in = "yes"
    except Exception as exc:
        newcomer_logged_in = f"no: {exc}"
    # The learner (told by the error in their notebook) deletes what they wrote.
    filler.run("import glob, os\nfor path in glob.glob('fill-*.bin'):\n    os.unlink(path)")
    deleted = time.monotonic()
    until(lambda: neighbour.save("after.txt", "saved again") is None, "the neighbour saves again")
    cy = deployed_learner(deployed, "fill-cy")
    assert answers(cy, "print(6 * 7)", "42") and answers(filler, "print(6 * 7)", "42")
    back = time.monotonic() - deleted
    intact = [
        learner.name
        for learner in (filler, neighbour)
        if learner.read("mine.txt") == f"work of {learner.name}"
    ]
    assert len(intact) == 2
    assert why == "ENOSPC"
    # Each learner's work folder has its own size (resources.disk): the writer is stopped at theirs,
    # and neither a neighbour's save nor a newcomer's login waits for them to delete.
    quota = load_settings(deployed.config).resources.disk
    assert quota is not None and int(written) <= quota, (written, quota)
    assert neighbour_saved == "yes", neighbour_saved
    assert newcomer_logged_in == "yes", newcomer_logged_in
    for learner in (filler, neighbour, cy):
        learner.browser.stop(learner.name)
    fault_results.record(
        "learner_fills_work_folder",
        fault="a learner's kernel writes into ~/work until the file system refuses",
        learners=3,
        ended_working_with_files_intact=len(intact) + 1,
        stopped_by=f"{why} after {int(written) / 2**30:.1f} GiB, with the host's Docker data root "
        f"{100 * used / usable:.0f}% full (for learners: ext4 keeps 5% for root, which the hub and "
        "Docker run as)",
        while_full={"neighbour_saved_a_file": neighbour_saved, "a_new_learner_logged_in": newcomer_logged_in},
        seconds_until_working=seconds([back]),
        counted_from="the learner deleting what they wrote",
    )
