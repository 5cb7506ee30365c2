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
from dlworkshop.smoke.jupyter import JupyterServer, run_code
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
        answer = httpx.get(
            f"{self.server.base_url}api/contents/{path}",
            headers={"Authorization": f"token {self.server.token}"},
            timeout=30,
        )
        return answer.json().get("content", "") if answer.status_code == 200 else f"HTTP {answer.status_code}"

    def run_and_forget(self, code: str, timeout: float = 300) -> None:
        """A cell whose end (if any) nobody waits for: the kernel may die running it."""
        with contextlib.suppress(Exception):
            self.run(code, timeout)

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
    running_hub.container(ada.name).kill()  # SIGKILL; Docker removes it (auto-remove)
    killed = time.monotonic()
    # JupyterLab keeps asking its server (the proxy's requests to the gone address hang) until the
    # hub's poll of the engine (every 30 s) finds it gone; then the hub answers 424, on which
    # JupyterLab offers to restart it: the learner's one click.
    while status_of(ada) != 424:
        assert time.monotonic() - killed < 300, "the hub did not notice the killed container"
        time.sleep(0.5)
    noticed = time.monotonic() - killed
    ada.browser.get(f"/hub/spawn/{ada.name}")  # JupyterLab's Restart button
    assert ada.browser.follow_progress(ada.name, timeout=300)[-1].get("ready")
    ada.kernel = ""
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
        seconds_from_the_kill_to_running_code=seconds([back]),
        what_is_lost="the kernels' memory (variables, a model being trained); saved files stay",
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
        seconds_from_the_kill_to_running_code=seconds([back]),
        neighbour_cell_s={"before": seconds(before), "during": seconds(during)},
        what_is_lost="that kernel's variables",
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
    bomber.browser.get(f"/hub/spawn/{bomber.name}")
    assert bomber.browser.follow_progress(bomber.name, timeout=300)[-1].get("ready")
    bomber.kernel = ""
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
        seconds_from_the_limit_to_running_code=seconds([back]),
        neighbour_cell_s={"before": seconds(before), "during": seconds(during)},
        what_is_lost="the kernels' memory; saved files stay",
    )


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
