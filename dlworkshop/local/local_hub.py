"""`dlworkshop up` / `down` / `prewarm`: the workshop hub on this machine (local Docker, SQLite,
no cloud), its whole lifecycle.

The hub runs in its own container with the Docker socket; learners' servers run on a private
Docker network, fenced off the host by the firewall rules the deploy also installs
(dlworkshop/docker_host/firewall.py), each with a size-limited work folder (dlworkshop/docker_host/work_volumes.py). `up`
builds what is missing, starts the hub (serving TLS where it listens beyond localhost), waits until
it answers, and undoes what it created if any step fails: never a half-done hub.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import socket
import sys
import tarfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
from rich.console import Console

from dlworkshop import contract
from dlworkshop.capacity import HostFacts
from dlworkshop.docker_host import work_volumes
from dlworkshop.docker_host.firewall import install_rules, remove_rules
from dlworkshop.docker_host.hub_runtime import (
    hub_container_spec,
    hub_settings,
    hub_settings_yaml,
    require_docker_hub,
)
from dlworkshop.docker_host.shared_folder import announce_shared, check_shareable
from dlworkshop.errors import WorkshopError
from dlworkshop.gpus import detect_gpus
from dlworkshop.image.docker import docker_client
from dlworkshop.image.ensure import ensure_images
from dlworkshop.local.preflight import check_start
from dlworkshop.local.tls import local_tls_files
from dlworkshop.settings import Settings, format_bytes

if TYPE_CHECKING:
    from docker import DockerClient
    from docker.models.containers import Container
    from docker.models.networks import Network


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


def port_free(bind: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((bind, port))
            return True
        except OSError:
            return False


def hub_port_taken(settings: Settings, client: DockerClient | None) -> bool:
    """The hub's port is in use by something other than this hub's own container (which `up`
    re-creates on the same port). Without a Docker engine no hub of ours can hold it."""
    import docker

    hub = settings.hub
    if port_free(hub.bind, published_port(settings)):
        return False
    if client is None:
        return True
    try:
        client.containers.get(hub.container_name)
    except docker.errors.NotFound:
        return True
    return False


def engine_live_restore(client: DockerClient | None) -> bool | None:
    """Whether the Docker engine keeps containers running across its own restarts (None: no
    engine, or it does not say)."""
    if client is None:
        return None
    try:
        enabled = client.info().get("LiveRestoreEnabled")
    except Exception:
        return None
    return enabled if isinstance(enabled, bool) else None


def bridge_interface(network: Network) -> str:
    return network.attrs.get("Options", {}).get(BRIDGE_NAME_OPTION) or f"br-{str(network.id)[:12]}"


BRIDGE_NAME_OPTION = "com.docker.network.bridge.name"


def wait_until_answering(url: str, container: Container, timeout: float, console: Console) -> None:
    deadline = time.monotonic() + timeout
    with console.status(f"waiting for the hub at {url}"):
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                # Only whether it answers: a self-signed certificate is checked by the learners' browsers.
                if httpx.get(f"{url}/hub/api", timeout=5, verify=False).status_code == 200:
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


def write_settings_file(settings: Settings) -> Path:
    """The settings the hub reads (hub_runtime.hub_settings, as the deploy writes them), mode 0600."""
    folder = contract.state_dir() / settings.hub.container_name
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / contract.CONFIG_NAME
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(hub_settings_yaml(hub_settings(settings, detect_gpus())))
    return target


def warn_if_quotas_outgrow_the_disk(settings: Settings, console: Console) -> None:
    """Work-folder images are sparse: they take space as learners fill them."""
    disk = settings.resources.disk
    folder = contract.work_images_dir(settings.hub.container_name)
    free = shutil.disk_usage(next(p for p in (folder, *folder.parents) if p.exists())).free
    if disk is not None and settings.learners.total * disk > free:
        console.print(
            f"[yellow]note:[/] {settings.learners.total} work folders of {format_bytes(disk)} could grow "
            f"beyond the {format_bytes(free)} free on this disk; starts are refused below "
            f"resources.disk_free_min ({format_bytes(settings.resources.disk_free_min)})",
            highlight=False,
        )


def published_port(settings: Settings) -> int:
    """The hub's port on this machine: hub.tls.port where `up` serves TLS, else hub.port."""
    return settings.hub.tls.port if settings.hub.tls.mode != "none" else settings.hub.port


def require_root(command: str) -> None:
    """`up` and `down` change this machine's firewall and loop devices, which only root may: said
    before anything is built, started or removed (scripts/up runs `up` through sudo)."""
    if os.geteuid() == 0:
        return
    program = sys.argv[0] if Path(sys.argv[0]).name == "dlworkshop" else "dlworkshop"
    raise WorkshopError(
        f"`dlworkshop {command}` needs root: it {'installs' if command == 'up' else 'removes'} the firewall "
        "rules that keep learners off this machine's services and the cloud metadata address (iptables) "
        "and attaches or detaches the loop devices of their size-limited work folders (losetup)",
        fix=f"run it through sudo, keeping your settings: `sudo --preserve-env=DLWORKSHOP_ACCESS_CODE "
        f"{program} {command} ...` (scripts/up does that for you)",
    )


def up(settings: Settings, console: Console, rebuild: bool = False, wait: float = 180) -> str:
    """Start (or re-create, keeping learners' servers and volumes) the hub; returns its URL."""
    import docker

    require_docker_hub(settings, "up")
    hub = settings.hub
    # What the settings alone decide is refused before anything is built or started.
    tls_files = local_tls_files(settings)
    require_root("up")
    client = docker_client()
    existing = None
    with contextlib.suppress(docker.errors.NotFound):
        existing = client.containers.get(hub.container_name)
    port = published_port(settings)
    # The same decision `dlworkshop check` shows: what blocks a start refuses it here, before anything is built.
    start = check_start(
        settings,
        HostFacts.detect(),
        port_taken=hub_port_taken(settings, client),
        live_restore=engine_live_restore(client),
    )
    start.raise_if_blocked()
    for warning in start.warnings:
        console.print(f"[yellow]warning[/]: {warning}")
    ensure_images(client, settings, console, rebuild=rebuild)
    with all_or_nothing() as rollback:
        try:
            network = client.networks.get(hub.network)
        except docker.errors.NotFound:
            network = client.networks.create(
                hub.network,
                driver="bridge",
                labels={contract.LABEL_HUB: hub.container_name},
                # Named as the deploy names it, so firewall rules can name it.
                options={BRIDGE_NAME_OPTION: contract.bridge_name(hub.network)},
            )
            rollback.add(network.remove)
        bridge = bridge_interface(network)
        added = install_rules(bridge)
        if added:
            rollback.add(lambda: remove_rules(bridge, added))
        if settings.resources.disk is not None:
            if not work_volumes.images_exist(hub.container_name):
                rollback.add(lambda: remove_free_slots(client, settings))
            with console.status("preparing the learners' size-limited work folders"):
                offered = work_volumes.prepare(client, settings)
            if offered:
                console.print(
                    f"prepared {len(offered)} work folders of {format_bytes(settings.resources.disk)}",
                    highlight=False,
                )
            warn_if_quotas_outgrow_the_disk(settings, console)
        volume_names = [hub.data_volume]
        if settings.mounts_shared_folder:
            volume_names.append(contract.shared_volume_name(hub.container_name))
        for name in volume_names:
            try:
                client.volumes.get(name)
            except docker.errors.NotFound:
                volume = client.volumes.create(name, labels={contract.LABEL_HUB: hub.container_name})
                rollback.add(volume.remove)
        settings_file = write_settings_file(settings)
        if existing is not None:
            # A re-created hub (upgrade, changed settings) finds the learners' servers still running.
            existing.remove(force=True)
        accounts_file = settings.auth.accounts_file if settings.auth.mode == "accounts" else None
        accounts = str(accounts_file.resolve()) if accounts_file else None
        tls = (str(tls_files[0]), str(tls_files[1])) if tls_files else None
        extra_config = str(hub.extra_config.resolve()) if hub.extra_config else None
        container = client.containers.run(
            detach=True, **hub_container_spec(settings, str(settings_file), accounts, tls, extra_config)
        )
        rollback.add(lambda: container.remove(force=True))
        scheme = "https" if tls else "http"
        wait_until_answering(
            f"{scheme}://{contract.local_address(hub.bind)}:{port}", container, wait, console
        )
    return hub.url


def learner_containers(client: DockerClient, settings: Settings) -> list[Container]:
    """This hub's learner containers (labelled with it by the hub's Docker backend)."""
    label = f"{contract.LABEL_HUB}={settings.hub.container_name}"
    return [
        container
        for container in client.containers.list(all=True, filters={"label": label})
        if contract.LABEL_USER in container.labels
    ]


def down(settings: Settings, purge: bool, console: Console, force: bool = False) -> None:
    """Stop the hub and the learners' servers; keep the learners' volumes unless purge (which,
    unless force, refuses while a learner's work is not in the last export)."""
    import docker

    require_root("down")
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
        remove_rules(bridge_interface(network))
        network.remove()
    if purge and not force:
        refuse_to_purge_unexported_work(settings, console)
    if purge:
        for name in remove_work_folders(client, settings):
            console.print(f"removed volume {name}")
        for name in (contract.shared_volume_name(hub.container_name), hub.data_volume):
            with contextlib.suppress(docker.errors.NotFound):
                client.volumes.get(name).remove(force=True)
                console.print(f"removed volume {name}")
    else:
        # Their images stay attached: `dlworkshop export` reads them with no hub running.
        console.print("learners' work volumes kept (`dlworkshop down --purge` removes them)")


def refuse_to_purge_unexported_work(settings: Settings, console: Console) -> None:
    """Checked once nothing runs that could still change a work folder (dlworkshop/clients/export.py)."""
    from dlworkshop.clients.export import unexported_work

    unsaved = unexported_work(settings, console)
    if unsaved:
        raise WorkshopError(
            "kept every volume: the last export lacks the work of " + "; ".join(unsaved),
            fix="export it with `dlworkshop export --dest DIR` (no hub needed), then `dlworkshop down "
            "--purge` again; or delete it anyway with `dlworkshop down --purge --force`",
        )


def remove_free_slots(client: DockerClient, settings: Settings) -> None:
    """Undo a first preparation: the free slots' volumes and the images (no learner has one yet)."""
    hub = settings.hub.container_name
    for volume in client.volumes.list(
        filters={"label": [f"{contract.LABEL_HUB}={hub}", contract.LABEL_WORK_SLOT]}
    ):
        if contract.LABEL_USER not in (volume.attrs.get("Labels") or {}):
            volume.remove(force=True)
    work_volumes.purge(hub)


def remove_work_folders(client: DockerClient, settings: Settings) -> list[str]:
    """This hub's learners' work volumes, its free slots and their images: the learners' work gone."""
    import docker

    hub = settings.hub.container_name
    prefix = contract.work_volume_prefix(hub)
    slots = client.volumes.list(filters={"label": [f"{contract.LABEL_HUB}={hub}", contract.LABEL_WORK_SLOT]})
    names = {v.name for v in client.volumes.list() if v.name.startswith(prefix)} | {v.name for v in slots}
    for name in names:
        with contextlib.suppress(docker.errors.NotFound):
            client.volumes.get(name).remove(force=True)
    work_volumes.purge(hub)
    return sorted(names)


def running_hub(settings: Settings):  # type: ignore[no-untyped-def]
    """The hub's container (on this machine's engine, or $DOCKER_HOST's), running."""
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
    return client, hub


def run_in_hub(settings: Settings, command: list[str]) -> tuple[int, str]:
    """Run a command inside the hub container, as the hub's user; its exit code and output."""
    _, hub = running_hub(settings)
    result = hub.exec_run(command, workdir=str(contract.HUB_HOME))
    return result.exit_code, result.output.decode(errors="replace").strip()


def prewarm(settings: Settings, console: Console, timeout: float = 1800) -> None:
    """Start the learners' servers now, from inside the hub (its prewarm service's token), and
    stream its progress; a failed server is a nonzero exit."""
    client, hub = running_hub(settings)
    command = ["python", "-m", "hub.prewarm", "--now", "--timeout", str(timeout)]
    execution = client.api.exec_create(hub.id, command, workdir=str(contract.HUB_HOME))
    for chunk in client.api.exec_start(execution["Id"], stream=True):
        console.out(chunk.decode(errors="replace"), end="", highlight=False)
    code = client.api.exec_inspect(execution["Id"])["ExitCode"]
    if code != 0:
        raise WorkshopError(
            "some servers could not be pre-warmed (see the table above)",
            fix="check `docker logs` of the hub and of the failed learners' containers, then run again",
        )


def shared_material(paths: list[Path]) -> bytes:
    """The files and folders as a tar for the shared folder: root's, readable by all, writable by
    none but root (learners, UID 1000, get `Permission denied`); each under its own name."""

    def readable_by_all(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        executable = info.isdir() or info.mode & 0o111
        info.mode = 0o755 if executable else 0o644
        return info

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for path in paths:
            archive.add(path, arcname=path.name, filter=readable_by_all)
    return buffer.getvalue()


def share(settings: Settings, paths: list[Path], console: Console) -> list[str]:
    """Copy files and folders into the running hub's shared folder, which every learner sees at
    once, read-only, at ~/work/shared (a file of the same name is replaced). Returns the names."""
    check_shareable(settings, paths, bring_up="dlworkshop up")
    _, hub = running_hub(settings)
    if not hub.put_archive(str(contract.HUB_SHARED), shared_material(paths)):
        raise WorkshopError("the hub refused the files", fix="check `docker logs` of the hub")
    return announce_shared(paths, console)
