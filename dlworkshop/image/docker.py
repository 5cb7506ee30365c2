"""The Docker command line the builds use, and one clear error when there is no engine."""

from __future__ import annotations

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
        raise DockerUnavailableError(
            "the Docker engine is not running or not reachable",
            fix="start it (`systemctl start docker`, or scripts/setup-host) and check you may use /var/run/docker.sock",
        )
    return client


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
    except Exception:
        raise DockerUnavailableError(
            "the Docker engine is not running or not reachable",
            fix="start it (`systemctl start docker`, or scripts/setup-host)",
        ) from None
    return client


def image_present(client: DockerClient, reference: str) -> bool:
    import docker

    try:
        client.images.get(reference)
        return True
    except docker.errors.ImageNotFound:
        return False
