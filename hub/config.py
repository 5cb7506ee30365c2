"""JupyterHub configured from the workshop settings: one small function per concern.

`configure(c, settings)` is all jupyterhub_config.py calls. Each `apply_*` sets one concern on
JupyterHub's config object and is unit-tested against a plain traitlets Config.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path
from typing import Any

from dlworkshop.settings import Settings

HUB_HOME = Path("/srv/jupyterhub")
DATA = HUB_HOME / "data"
ACCOUNTS_FILE = HUB_HOME / "accounts.csv"
PREWARM_TOKEN_FILE = "prewarm_token"  # on the hub volume, beside the other secrets
TEMPLATES = Path(__file__).resolve().parent / "templates"
WORK_FOLDER = "/home/jovyan/work"
QUEUED_START_TIMEOUT = 24 * 3600


def learner_container_name(hub: str, username: str = "{raw_username}") -> str:
    """Scoped by the hub, so two hubs on one machine never share a learner's container or work.
    Learner names are already Docker-safe ([a-z0-9_-]), so they are used as typed."""
    return f"{hub}-learner-{username}"


def work_volume_name(hub: str, username: str = "{raw_username}") -> str:
    return f"{hub}-work-{username}"


def read_or_create_secret(path: Path, nbytes: int = 32) -> str:
    """A secret kept on the hub volume (mode 0600), so a restarted hub keeps sessions and proxy."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(nbytes)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return value


def apply_hub(c: Any, settings: Settings, data: Path = DATA) -> None:
    c.JupyterHub.bind_url = "http://0.0.0.0:8000"
    # Learner containers reach the hub's API by its container name on the workshop network.
    c.JupyterHub.hub_ip = "0.0.0.0"
    c.JupyterHub.hub_connect_ip = settings.hub.container_name
    c.JupyterHub.db_url = f"sqlite:///{data / 'jupyterhub.sqlite'}"
    c.JupyterHub.cookie_secret_file = str(data / "jupyterhub_cookie_secret")
    c.ConfigurableHTTPProxy.auth_token = read_or_create_secret(data / "proxy_auth_token")
    # The proxy lives and dies with the hub container: its pid file must not outlive it on the volume.
    c.ConfigurableHTTPProxy.pid_file = "/tmp/jupyterhub-proxy.pid"
    # Learners' servers outlive a hub restart or upgrade.
    c.JupyterHub.cleanup_servers = False
    c.JupyterHub.template_paths = [str(TEMPLATES)]
    c.JupyterHub.template_vars = {"workshop_name": settings.workshop.name}
    c.Spawner.default_url = "/lab"


def apply_spawner(c: Any, settings: Settings) -> None:
    from hub.spawner import WorkshopSpawner

    resources = settings.resources
    c.JupyterHub.spawner_class = WorkshopSpawner
    c.DockerSpawner.image = settings.image.reference
    c.DockerSpawner.pull_policy = "ifnotpresent" if settings.image.source == "pull" else "never"
    c.DockerSpawner.network_name = settings.hub.network
    c.DockerSpawner.use_internal_ip = True
    c.DockerSpawner.remove = True
    c.DockerSpawner.name_template = learner_container_name(settings.hub.container_name)
    c.DockerSpawner.volumes = {work_volume_name(settings.hub.container_name): WORK_FOLDER}
    c.DockerSpawner.notebook_dir = WORK_FOLDER
    c.DockerSpawner.cpu_limit = resources.cpu
    c.DockerSpawner.mem_limit = resources.memory
    # Time in the admission queue never fails a learner: the start itself is bounded instead.
    c.DockerSpawner.start_timeout = QUEUED_START_TIMEOUT
    c.WorkshopSpawner.admitted_start_timeout = settings.hub.start_timeout
    c.DockerSpawner.http_timeout = settings.hub.start_timeout
    # The admission queue, not a refusal, handles a room arriving at once.
    c.JupyterHub.concurrent_spawn_limit = 0
    c.WorkshopSpawner.disk_free_min = resources.disk_free_min


def apply_security(c: Any, settings: Settings) -> None:
    """Learners run as UID 1000 with no capabilities, no privilege escalation, a process limit."""
    c.DockerSpawner.extra_create_kwargs = {"user": "1000"}
    c.DockerSpawner.extra_host_config = {
        "pids_limit": settings.resources.pids,
        "security_opt": ["no-new-privileges"],
        "cap_drop": ["ALL"],
        # No swap beyond the memory limit, so the limit is the limit.
        "memswap_limit": settings.resources.memory,
    }


def apply_auth(c: Any, settings: Settings) -> None:
    auth = settings.auth
    if auth.mode == "shared-code":
        from hub.auth import SharedCodeAuthenticator

        c.JupyterHub.authenticator_class = SharedCodeAuthenticator
        c.SharedCodeAuthenticator.access_code = (
            auth.access_code.get_secret_value() if auth.access_code else ""
        )
        c.Authenticator.allow_all = True
    elif auth.mode == "accounts":
        from hub.auth import AccountsAuthenticator

        c.JupyterHub.authenticator_class = AccountsAuthenticator
        c.AccountsAuthenticator.accounts_file = str(ACCOUNTS_FILE)
        c.Authenticator.allow_all = True
    else:
        c.JupyterHub.authenticator_class = "oauthenticator.github.GitHubOAuthenticator"
        github = auth.github
        c.GitHubOAuthenticator.client_id = github.client_id
        c.GitHubOAuthenticator.client_secret = github.client_secret.get_secret_value()
        if github.callback_url:
            c.GitHubOAuthenticator.oauth_callback_url = github.callback_url
        if github.allowed_organizations:
            c.GitHubOAuthenticator.allowed_organizations = set(github.allowed_organizations)
        else:
            c.GitHubOAuthenticator.allow_all = True
    c.RateLimitedAuthenticator.attempts_per_minute = auth.login_attempts_per_minute
    # Admins (instructors, helpers) can open any learner's server: JupyterHub's admin role does.
    c.Authenticator.admin_users = set(auth.admins)


def apply_culler(c: Any, settings: Settings) -> None:
    culling = settings.culling
    command = [
        sys.executable,
        "-m",
        "jupyterhub_idle_culler",
        f"--timeout={culling.idle_timeout}",
        f"--cull-every={culling.every}",
    ]
    if culling.max_age:
        command.append(f"--max-age={culling.max_age}")
    c.JupyterHub.services = [{"name": "idle-culler", "command": command}]
    c.JupyterHub.load_roles = [
        {
            "name": "idle-culler",
            "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
            "services": ["idle-culler"],
        }
    ]


def apply_prewarm(c: Any, settings: Settings, data: Path = DATA) -> None:
    """The prewarm service: its token (for `dlworkshop prewarm`), and with workshop.start, a
    process that starts the learners' servers ahead of time. Seats for shared-code logins."""
    from hub.prewarm import seat_count

    service: dict[str, Any] = {
        "name": "prewarm",
        "api_token": read_or_create_secret(data / PREWARM_TOKEN_FILE),
    }
    if settings.workshop.start is not None:
        service["command"] = [sys.executable, "-m", "hub.prewarm", "--scheduled"]
        service["environment"] = {"DLWORKSHOP_CONFIG": os.environ.get("DLWORKSHOP_CONFIG", "")}
        service["cwd"] = str(HUB_HOME)
    hub_section = c.JupyterHub
    c.JupyterHub.services = [*(hub_section.services if "services" in hub_section else []), service]
    c.JupyterHub.load_roles = [
        *(hub_section.load_roles if "load_roles" in hub_section else []),
        {
            "name": "prewarm",
            "scopes": ["admin:users", "admin:servers", "list:users"],
            "services": ["prewarm"],
        },
    ]
    c.SharedCodeAuthenticator.seats = seat_count(settings)
    c.SharedCodeAuthenticator.seats_file = str(data / "seats.json")


def apply_gpu(c: Any, settings: Settings, running: list[tuple[str, dict[str, str]]] | None = None) -> None:
    """One allocator for the hub, rebuilt from the running learner containers' labels."""
    from hub.gpu import GpuAllocator
    from hub.spawner import LABEL_USER, WorkshopSpawner

    allocator = GpuAllocator.from_settings(settings.resources.gpu)
    if allocator.enabled:
        if running is None:
            import docker

            client = docker.from_env()
            running = [
                (container.labels[LABEL_USER], container.labels)
                for container in client.containers.list(filters={"label": LABEL_USER})
            ]
        allocator.rebuild(running)
        # Read by people (and the restart test): what the hub believes after a start or restart.
        print(
            f"dlworkshop: GPU assignments {sorted((a.username, a.device_ids) for a in allocator.assignments.values())}",
            flush=True,
        )
    WorkshopSpawner.gpu_allocator = allocator
    c.WorkshopSpawner.gpu_device_requests = settings.resources.gpu.docker_device_requests


def apply_admission(settings: Settings, cpus: float | None = None, memory: int | None = None) -> int:
    """The hub's one admission queue, sized from workshop.yaml or the host; returns its capacity."""
    from dlworkshop.capacity import available_memory, start_capacity
    from hub.admission import AdmissionQueue
    from hub.spawner import WorkshopSpawner

    capacity = start_capacity(
        settings, cpus or float(os.cpu_count() or 1), memory if memory is not None else available_memory()
    )
    WorkshopSpawner.admission = AdmissionQueue(capacity)
    print(f"dlworkshop: admitting {capacity} learner server starts at once, the rest queue", flush=True)
    return capacity


def configure(c: Any, settings: Settings) -> None:
    apply_hub(c, settings)
    apply_spawner(c, settings)
    apply_security(c, settings)
    apply_auth(c, settings)
    apply_culler(c, settings)
    apply_prewarm(c, settings)
    apply_gpu(c, settings)
    apply_admission(settings)
