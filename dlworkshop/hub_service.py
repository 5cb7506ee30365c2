"""`dlworkshop up` / `down`: the workshop hub on this machine (local Docker, SQLite, no cloud).

The hub runs in its own container with the Docker socket; learners' servers run on a private
Docker network. `up` builds what is missing, starts the hub, waits until it answers, and undoes
what it created if any step fails: never a half-done hub.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from rich.console import Console

from dlworkshop.errors import DockerUnavailableError, WorkshopError
from dlworkshop.settings import Settings

HUB_LABEL = "org.dlworkshop.hub"
LEARNER_LABEL = "org.dlworkshop.user"
METADATA_ADDRESS = "169.254.169.254"
CONTAINER_SETTINGS = "/srv/jupyterhub/workshop.yaml"
CONTAINER_ACCOUNTS = "/srv/jupyterhub/accounts.csv"


def docker_client():  # type: ignore[no-untyped-def]
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


def state_dir() -> Path:
    """Where `up` keeps the settings file the hub container reads."""
    root = Path("/var/lib/dlworkshop") if os.geteuid() == 0 else Path.home() / ".local/state/dlworkshop"
    return Path(os.environ.get("DLWORKSHOP_STATE", root))


@dataclass
class Rollback:
    """Undo steps for what this run created, run in reverse when a later step fails."""

    steps: list[Callable[[], object]]

    def add(self, step: Callable[[], object]) -> None:
        self.steps.append(step)

    def run(self) -> None:
        for step in reversed(self.steps):
            with contextlib.suppress(Exception):
                step()


@contextlib.contextmanager
def all_or_nothing() -> Iterator[Rollback]:
    rollback = Rollback([])
    try:
        yield rollback
    except BaseException:
        rollback.run()
        raise


def image_present(client, reference: str) -> bool:  # type: ignore[no-untyped-def]
    import docker

    try:
        client.images.get(reference)
        return True
    except docker.errors.ImageNotFound:
        return False


def ensure_base_image(client, reference: str, console: Console) -> str:  # type: ignore[no-untyped-def]
    """The base image: present, pulled from a registry, or (no registry) built with debootstrap."""
    if image_present(client, reference):
        return reference
    with console.status(f"pulling {reference}"):
        try:
            client.images.pull(reference)
            return reference
        except Exception:
            console.print(f"{reference} cannot be pulled (no registry?): building an offline Debian base")
    from dlworkshop.image.base import build_base

    return build_base(console=console)


def ensure_images(client, settings: Settings, console: Console, rebuild: bool = False) -> None:  # type: ignore[no-untyped-def]
    import docker

    from dlworkshop.image.build import build_hub_image, build_learner_image

    image = settings.image
    learner_missing = rebuild or not image_present(client, image.reference)
    hub_missing = rebuild or not image_present(client, settings.hub.image)
    if image.source == "pull" and learner_missing:
        with console.status(f"pulling {image.reference}"):
            try:
                client.images.pull(image.reference)
            except docker.errors.APIError as exc:
                raise WorkshopError(
                    f"cannot pull {image.reference}: {exc.explanation or exc}",
                    fix="check the registry and the image name, or use image.source: build or archive",
                ) from None
        learner_missing = False
    if image.source == "archive" and learner_missing:
        archive_path = Path(image.archive)  # type: ignore[arg-type]
        if not archive_path.is_file():
            raise WorkshopError(
                f"image.archive {archive_path} does not exist", fix="give the path of a `docker save` file"
            )
        with console.status(f"loading {archive_path}"), archive_path.open("rb") as archive:
            client.images.load(archive)  # streamed: archives of TensorFlow images are gigabytes
        if not image_present(client, image.reference):
            raise WorkshopError(
                f"{archive_path} does not hold {image.reference}",
                fix="set image.name and image.tag to the archived image",
            )
        learner_missing = False
    if not (learner_missing or hub_missing):
        return
    base = ensure_base_image(client, image.base_image, console)
    if learner_missing:
        build_learner_image(
            image.reference, image.variant, base, image.ca_bundle, image.data_mirror, console=console
        )
    if hub_missing:
        build_hub_image(settings.hub.image, base, image.ca_bundle, console=console)


def port_free(bind: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((bind, port))
            return True
        except OSError:
            return False


def bridge_interface(network) -> str:  # type: ignore[no-untyped-def]
    return network.attrs.get("Options", {}).get("com.docker.network.bridge.name") or f"br-{network.id[:12]}"


def metadata_rule(interface: str) -> list[str]:
    """Keeps learner containers off the cloud metadata address (credentials live there)."""
    return ["DOCKER-USER", "-i", interface, "-d", METADATA_ADDRESS, "-j", "DROP"]


def install_metadata_rule(interface: str) -> bool:
    """Insert the rule unless present; returns whether it was added."""
    if shutil.which("iptables") is None:
        raise WorkshopError(
            "iptables is missing: learners could reach the cloud metadata address",
            fix="apt-get install iptables",
        )
    rule = metadata_rule(interface)
    if subprocess.run(["iptables", "-C", *rule], capture_output=True).returncode == 0:
        return False
    added = subprocess.run(["iptables", "-I", *rule], capture_output=True, text=True)
    if added.returncode != 0:
        raise WorkshopError(
            f"could not install the firewall rule for {METADATA_ADDRESS}: {added.stderr.strip()}",
            fix="run `dlworkshop up` as root (or with CAP_NET_ADMIN)",
        )
    return True


def remove_metadata_rule(interface: str) -> None:
    if shutil.which("iptables"):
        while (
            subprocess.run(["iptables", "-D", *metadata_rule(interface)], capture_output=True).returncode == 0
        ):
            pass


def wait_until_answering(url: str, container, timeout: float, console: Console) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    with console.status(f"waiting for the hub at {url}"):
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/hub/api", timeout=5).status_code == 200:
                    return
            container.reload()
            if container.status in ("exited", "dead"):
                break
            time.sleep(1)
    logs = container.logs(tail=20).decode(errors="replace")
    raise WorkshopError(
        f"the hub did not answer at {url}; its last log lines:\n{logs}",
        fix="fix the cause above and run `dlworkshop up` again",
    )


def write_settings_file(source: Path | None, text: str, settings: Settings) -> Path:
    folder = state_dir() / settings.hub.container_name
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "workshop.yaml"
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(source.read_text() if source else text)
    return target


def hub_container_spec(settings: Settings, settings_file: str, accounts_file: str | None = None) -> dict:  # type: ignore[type-arg]
    """The hub container as `up` runs it and the Ansible deploy declares it (one spec, two users):
    keyword arguments of the Docker SDK's `containers.run`."""
    hub = settings.hub
    volumes = {
        "/var/run/docker.sock": {"bind": "/var/run/docker.sock", "mode": "rw"},
        hub.data_volume: {"bind": "/srv/jupyterhub/data", "mode": "rw"},
        settings_file: {"bind": CONTAINER_SETTINGS, "mode": "ro"},
    }
    if accounts_file is not None:
        volumes[accounts_file] = {"bind": CONTAINER_ACCOUNTS, "mode": "ro"}
    # workshop.start without a UTC offset means the host's local time, in the hub as on the host.
    volumes["/etc/localtime"] = {"bind": "/etc/localtime", "mode": "ro"}
    return {
        "image": hub.image,
        "name": hub.container_name,
        "network": hub.network,
        "ports": {"8000/tcp": (hub.bind, hub.port)},
        "volumes": volumes,
        "environment": {"DLWORKSHOP_CONFIG": CONTAINER_SETTINGS},
        "labels": {HUB_LABEL: hub.container_name},
        "restart_policy": {"Name": "unless-stopped"},
    }


def up(
    settings: Settings,
    config_path: Path | None,
    config_text: str,
    console: Console,
    rebuild: bool = False,
    wait: float = 180,
) -> str:
    """Start (or re-create, keeping learners' servers and volumes) the hub; returns its URL."""
    import docker

    client = docker_client()
    hub = settings.hub
    existing = None
    with contextlib.suppress(docker.errors.NotFound):
        existing = client.containers.get(hub.container_name)
    if existing is None and not port_free(hub.bind, hub.port):
        raise WorkshopError(
            f"port {hub.bind}:{hub.port} is already in use",
            fix="stop what uses it, or set hub.port in workshop.yaml",
        )
    if settings.auth.mode == "accounts" and not (
        settings.auth.accounts_file and settings.auth.accounts_file.is_file()
    ):
        raise WorkshopError(
            "auth.accounts_file is missing",
            fix="run `dlworkshop accounts generate N` and set auth.accounts_file",
        )
    ensure_images(client, settings, console, rebuild=rebuild)
    with all_or_nothing() as rollback:
        try:
            network = client.networks.get(hub.network)
        except docker.errors.NotFound:
            network = client.networks.create(
                hub.network, driver="bridge", labels={HUB_LABEL: hub.container_name}
            )
            rollback.add(network.remove)
        if install_metadata_rule(bridge_interface(network)):
            rollback.add(lambda: remove_metadata_rule(bridge_interface(network)))
        try:
            client.volumes.get(hub.data_volume)
        except docker.errors.NotFound:
            volume = client.volumes.create(hub.data_volume, labels={HUB_LABEL: hub.container_name})
            rollback.add(volume.remove)
        settings_file = write_settings_file(config_path, config_text, settings)
        if existing is not None:
            # A re-created hub (upgrade, changed settings) finds the learners' servers still running.
            existing.remove(force=True)
        accounts = str(settings.auth.accounts_file.resolve()) if settings.auth.mode == "accounts" else None
        container = client.containers.run(
            detach=True, **hub_container_spec(settings, str(settings_file), accounts)
        )
        rollback.add(lambda: container.remove(force=True))
        url = f"http://{'localhost' if hub.bind in ('127.0.0.1', '0.0.0.0') else hub.bind}:{hub.port}"
        wait_until_answering(url, container, wait, console)
    return hub.url


def learner_containers(client, settings: Settings) -> list:  # type: ignore[no-untyped-def,type-arg]
    return [
        container
        for container in client.containers.list(all=True, filters={"label": LEARNER_LABEL})
        if settings.hub.network in container.attrs.get("NetworkSettings", {}).get("Networks", {})
    ]


def down(settings: Settings, purge: bool, console: Console) -> None:
    """Stop the hub and the learners' servers; keep the learners' volumes unless purge."""
    import docker

    client = docker_client()
    hub = settings.hub
    with contextlib.suppress(docker.errors.NotFound):
        client.containers.get(hub.container_name).remove(force=True)
        console.print(f"removed the hub container {hub.container_name}")
    for container in learner_containers(client, settings):
        container.remove(force=True)
        console.print(f"stopped {container.name}")
    with contextlib.suppress(docker.errors.NotFound):
        network = client.networks.get(hub.network)
        remove_metadata_rule(bridge_interface(network))
        network.remove()
    if purge:
        # Only this hub's learners: their volumes are named <hub>-work-<learner> (hub/config.py).
        prefix = f"{hub.container_name}-work-"
        volumes = [v for v in client.volumes.list() if v.name.startswith(prefix)]
        with contextlib.suppress(docker.errors.NotFound):
            volumes.append(client.volumes.get(hub.data_volume))
        for volume in volumes:
            volume.remove(force=True)
            console.print(f"removed volume {volume.name}")
    else:
        console.print("learners' work volumes kept (`dlworkshop down --purge` removes them)")


def prewarm(settings: Settings, console: Console, timeout: float = 1800) -> None:
    """Start the learners' servers now, from inside the hub (its prewarm service's token), and
    stream its progress; a failed server is a nonzero exit."""
    import docker

    client = docker_client()
    try:
        hub = client.containers.get(settings.hub.container_name)
    except docker.errors.NotFound:
        raise WorkshopError(
            f"no hub container {settings.hub.container_name} on this machine",
            fix="start the hub with `dlworkshop up` first",
        ) from None
    if hub.status != "running":
        raise WorkshopError(f"the hub container is {hub.status}", fix="run `dlworkshop up`")
    command = ["python", "-m", "hub.prewarm", "--now", "--timeout", str(timeout)]
    execution = client.api.exec_create(hub.id, command, workdir="/srv/jupyterhub")
    for chunk in client.api.exec_start(execution["Id"], stream=True):
        console.out(chunk.decode(errors="replace"), end="", highlight=False)
    code = client.api.exec_inspect(execution["Id"])["ExitCode"]
    if code != 0:
        raise WorkshopError(
            "some servers could not be pre-warmed (see the table above)",
            fix="check `docker logs` of the hub and of the failed learners' containers, then run again",
        )
