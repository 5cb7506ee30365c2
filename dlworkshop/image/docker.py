"""The Docker command line the builds use, and one clear error when there is no engine."""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from dlworkshop.errors import DockerUnavailableError

if TYPE_CHECKING:
    from docker import DockerClient

# The Debian client knows BuildKit secrets without buildx; a newer `docker` earlier on PATH may not.
PREFERRED_CLIENTS = ("/usr/bin/docker",)


def docker_cli() -> str:
    """A docker client that can run BuildKit builds (`DOCKER_BUILDKIT=1 docker build --secret`)."""
    override = os.environ.get("DLWORKSHOP_DOCKER")
    candidates = [override] if override else [*PREFERRED_CLIENTS, shutil.which("docker")]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return candidate
    raise DockerUnavailableError(
        "no docker client found",
        fix="install Docker (Debian: apt-get install docker.io) or set DLWORKSHOP_DOCKER",
    )


def require_engine() -> str:
    """The client, after checking the engine answers."""
    client = docker_cli()
    probe = subprocess.run([client, "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True)
    if probe.returncode != 0:
        raise engine_unreachable(probe.stderr)
    return client


DEFAULT_SOCKET = "unix:///var/run/docker.sock"


def engine_socket() -> Path | None:
    """The engine's Unix socket this process would open ($DOCKER_HOST's, else Docker's default);
    None for an engine over TCP or SSH."""
    host = os.environ.get("DOCKER_HOST") or DEFAULT_SOCKET
    return Path(host.removeprefix("unix://")) if host.startswith("unix://") else None


def engine_unreachable(detail: str) -> DockerUnavailableError:
    """Why the engine did not answer, told apart: this user may not open its socket (the engine
    may well run), or nothing answers there."""
    socket = engine_socket()
    denied = "permission denied" in detail.lower() or (
        socket is not None and socket.exists() and not os.access(socket, os.R_OK | os.W_OK)
    )
    if denied:
        user = getpass.getuser()
        return DockerUnavailableError(
            f"{user} may not open the Docker engine's socket {socket or ''}".rstrip(),
            fix=f"run the command with sudo, or join the docker group (`sudo usermod -aG docker {user}`, "
            "then `newgrp docker` or log in again; the group is as good as root)",
        )
    return DockerUnavailableError(
        "the Docker engine is not running or not reachable"
        + (f" (no engine answers at {socket})" if socket is not None else ""),
        fix="start it (`sudo systemctl start docker`, or scripts/setup-host)",
    )


def image_labels(client: str, reference: str) -> dict[str, str] | None:
    """The labels of a local image, or None when it is not present."""
    result = subprocess.run(
        [client, "image", "inspect", "--format", "{{json .Config.Labels}}", reference],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        return None
    import json

    return json.loads(result.stdout or "null") or {}


def docker_client() -> DockerClient:
    """The Docker SDK's client for this machine's engine, or one clear error."""
    import docker

    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:
        raise engine_unreachable(str(exc)) from None
    return client


def image_present(client: DockerClient, reference: str) -> bool:
    import docker

    try:
        client.images.get(reference)
        return True
    except docker.errors.ImageNotFound:
        return False
