"""Where the smoke test runs: a learner's server on a hub, or a local container of an image."""

from __future__ import annotations

import contextlib
import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from dlworkshop import contract
from dlworkshop.clients.smoke.checks import WORK_FOLDER, CheckResult
from dlworkshop.clients.smoke.jupyter import JupyterServer
from dlworkshop.hubclient import HubClient, HubError
from dlworkshop.image.docker import require_engine


def placement(events: list[dict[str, Any]]) -> str:
    """Where the engine placed the server, from the spawn page's messages ('' where it does not say)."""
    for event in reversed(events):
        found = contract.SLURM_PLACED.search(str(event.get("message", "")))
        if found:
            return f" (Slurm job {found['job']} on {found['node']}, {found['queued']} s queued)"
    return ""


class TargetFailed(Exception):
    """A check that ends the run (nothing after it can be measured)."""

    def __init__(self, result: CheckResult) -> None:
        super().__init__(result.measured)
        self.result = result


@dataclass
class Target:
    server: JupyterServer
    checks: list[CheckResult]


@contextlib.contextmanager
def hub_target(
    url: str,
    username: str,
    password: str | None,
    token: str | None,
    timeout: float,
    secret: str | None = None,
) -> Iterator[Target]:
    """The smoke-test learner's server on the hub: logged in through the form (`secret`: theirs,
    in shared-code mode) or with an API token, started through the API, stopped at the end."""
    checks = []
    with HubClient(url) as hub:
        if token is None:
            if password is None:
                raise TargetFailed(
                    CheckResult("login", False, "no access code, password or API token to log in with")
                )
            started = time.monotonic()
            try:
                # The login alone starts no server: the API does, below, and is timed.
                hub.login(username, password, secret)
            except HubError as failed:
                raise TargetFailed(CheckResult("login", False, failed.message)) from None
            seconds = time.monotonic() - started
            checks.append(CheckResult("login", True, f"{seconds:.1f} s", seconds=seconds))
            token = hub.create_token(username, "dlworkshop smoke test")
        hub.use_token(token)
        started = time.monotonic()
        try:
            # The spawn page's event stream, as a browser follows it: an engine that places the
            # server somewhere (a Slurm job on a node) says where, and after how long in its queue.
            events = hub.spawn(username, timeout)
        except HubError as failed:
            raise TargetFailed(CheckResult("spawn", False, failed.message)) from None
        seconds = time.monotonic() - started
        checks.append(CheckResult("spawn", True, f"{seconds:.1f} s{placement(events)}", seconds=seconds))
        jupyter = JupyterServer(f"{hub.url}/user/{username}/", token)
        try:
            yield Target(jupyter, checks)
        finally:
            jupyter.delete(WORK_FOLDER)
            with contextlib.suppress(HubError):
                hub.stop(username, wait=None)


@contextlib.contextmanager
def image_target(image: str, cpus: float, memory: int, timeout: float) -> Iterator[Target]:
    """A container of the image, as the hub would start it, serving Jupyter on 127.0.0.1 only."""
    client = require_engine()
    token = secrets.token_hex(16)
    started = time.monotonic()
    run = subprocess.run(
        [
            client,
            "run",
            "-d",
            "--rm",
            "-p",
            "127.0.0.1::8888",
            f"--cpus={cpus}",
            f"--memory={memory}",
            "-e",
            f"CPU_LIMIT={cpus}",
            "-e",
            f"MEM_LIMIT={memory}",
            image,
            "jupyter",
            "server",
            "--ip=0.0.0.0",
            "--port=8888",
            f"--ServerApp.token={token}",
            "--no-browser",
        ],
        capture_output=True,
        text=True,
    )
    if run.returncode != 0:
        raise TargetFailed(
            CheckResult("spawn", False, f"could not start {image}: {run.stderr.strip()[-300:]}")
        )
    container = run.stdout.strip()
    try:
        port = subprocess.run([client, "port", container, "8888"], capture_output=True, text=True).stdout
        server = JupyterServer(f"http://127.0.0.1:{port.strip().rsplit(':', 1)[-1]}/", token)
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(server.base_url + "api", timeout=2).status_code == 200:
                    break
            if time.monotonic() - started > timeout:
                raise TargetFailed(
                    CheckResult("spawn", False, f"{image} did not serve Jupyter within {timeout:.0f} s")
                )
            time.sleep(0.5)
        seconds = time.monotonic() - started
        yield Target(server, [CheckResult("spawn", True, f"{seconds:.1f} s", seconds=seconds)])
    finally:
        subprocess.run([client, "rm", "-f", container], capture_output=True)
