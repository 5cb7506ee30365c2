"""Where the smoke test runs: a learner's server on a hub, or a local container of an image."""

from __future__ import annotations

import contextlib
import re
import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx

from dlworkshop.image.docker import require_engine
from dlworkshop.smoke.checks import WORK_FOLDER, CheckResult
from dlworkshop.smoke.jupyter import JupyterServer


class TargetFailed(Exception):
    """A check that ends the run (nothing after it can be measured)."""

    def __init__(self, result: CheckResult) -> None:
        super().__init__(result.measured)
        self.result = result


@dataclass
class Target:
    server: JupyterServer
    checks: list[CheckResult]


def _login(url: str, username: str, password: str) -> tuple[httpx.Client, float]:
    started = time.monotonic()
    client = httpx.Client(base_url=url, timeout=30)
    try:
        page = client.get("/hub/login")
    except httpx.HTTPError as exc:
        raise TargetFailed(
            CheckResult("login", False, f"hub unreachable at {url}: {type(exc).__name__}")
        ) from None
    found = re.search(r'name="_xsrf" value="([^"]+)"', page.text)
    if page.status_code != 200 or not found:
        raise TargetFailed(
            CheckResult("login", False, f"no login form at {url}/hub/login (HTTP {page.status_code})")
        )
    # No redirect following: the login alone must not start the server; the API does, and is timed.
    answer = client.post(
        "/hub/login", data={"username": username, "password": password, "_xsrf": found.group(1)}
    )
    if answer.status_code != 302 or "/hub/login" in answer.headers.get("location", ""):
        raise TargetFailed(
            CheckResult("login", False, f"login as {username} refused (wrong access code or password?)")
        )
    return client, time.monotonic() - started


def _api_token(client: httpx.Client, username: str) -> str:
    xsrf = next((c.value for c in client.cookies.jar if c.name == "_xsrf"), "")
    created = client.post(
        f"/hub/api/users/{username}/tokens",
        json={"note": "dlworkshop smoke test", "expires_in": 3600},
        headers={"X-XSRFToken": xsrf},
    )
    created.raise_for_status()
    return created.json()["token"]


@contextlib.contextmanager
def hub_target(
    url: str, username: str, password: str | None, token: str | None, timeout: float
) -> Iterator[Target]:
    url = url.rstrip("/")
    checks = []
    if token is None:
        if password is None:
            raise TargetFailed(
                CheckResult("login", False, "no access code, password or API token to log in with")
            )
        client, seconds = _login(url, username, password)
        checks.append(CheckResult("login", True, f"{seconds:.1f} s", seconds=seconds))
        token = _api_token(client, username)
    api = httpx.Client(base_url=f"{url}/hub/api", headers={"Authorization": f"token {token}"}, timeout=30)
    started = time.monotonic()
    api.post(f"/users/{username}/server")
    deadline = started + timeout
    while True:
        user = api.get(f"/users/{username}").json()
        server = user.get("servers", {}).get("")
        if server and server.get("ready"):
            break
        if time.monotonic() > deadline or (server is None and time.monotonic() - started > 10):
            raise TargetFailed(
                CheckResult(
                    "spawn", False, f"server of {username} not ready after {time.monotonic() - started:.0f} s"
                )
            )
        time.sleep(1)
    seconds = time.monotonic() - started
    checks.append(CheckResult("spawn", True, f"{seconds:.1f} s", seconds=seconds))
    jupyter = JupyterServer(f"{url}/user/{username}/", token)
    try:
        yield Target(jupyter, checks)
    finally:
        jupyter.delete(WORK_FOLDER)
        with contextlib.suppress(httpx.HTTPError):
            api.delete(f"/users/{username}/server")


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
