"""Each hub.config applier against a plain traitlets Config, as JupyterHub would receive it."""

from __future__ import annotations

import stat
from pathlib import Path

from traitlets.config import Config

from dlworkshop.settings import parse_settings
from hub import config as hub_config

BASE = "auth: {mode: shared-code, access_code: open-sesame, admins: [instructor]}\n"


def settings_of(extra: str = ""):  # type: ignore[no-untyped-def]
    return parse_settings(BASE + extra)


def test_hub_keeps_servers_and_secrets_across_restarts(tmp_path: Path) -> None:
    c = Config()
    hub_config.apply_hub(c, settings_of(), data=tmp_path)
    assert c.JupyterHub.cleanup_servers is False
    assert c.JupyterHub.db_url == f"sqlite:///{tmp_path / 'jupyterhub.sqlite'}"
    assert c.JupyterHub.hub_connect_ip == "dlworkshop-hub"
    token_file = tmp_path / "proxy_auth_token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    again = Config()
    hub_config.apply_hub(again, settings_of(), data=tmp_path)
    assert again.ConfigurableHTTPProxy.auth_token == c.ConfigurableHTTPProxy.auth_token


def test_spawner_limits_volume_and_network() -> None:
    c = Config()
    hub_config.apply_spawner(c, settings_of("resources: {cpu: 2, memory: 4G}\nhub: {network: ws-net}\n"))
    assert c.DockerSpawner.image == "dlworkshop/learner:latest"
    assert c.DockerSpawner.cpu_limit == 2 and c.DockerSpawner.mem_limit == 4 * 1024**3
    assert c.DockerSpawner.network_name == "ws-net"
    assert c.DockerSpawner.volumes == {"dlworkshop-hub-work-{raw_username}": "/home/jovyan/work"}
    assert c.DockerSpawner.name_template == "dlworkshop-hub-learner-{raw_username}"
    assert c.DockerSpawner.remove is True
    assert c.DockerSpawner.pull_policy == "never"


def test_security_drops_everything() -> None:
    c = Config()
    hub_config.apply_security(c, settings_of("resources: {pids: 300}\n"))
    assert c.DockerSpawner.extra_create_kwargs == {"user": "1000"}
    host = c.DockerSpawner.extra_host_config
    assert (
        host["cap_drop"] == ["ALL"]
        and host["security_opt"] == ["no-new-privileges"]
        and host["pids_limit"] == 300
    )


def test_shared_code_auth_and_admins() -> None:
    from hub.auth import SharedCodeAuthenticator

    c = Config()
    hub_config.apply_auth(c, settings_of())
    assert c.JupyterHub.authenticator_class is SharedCodeAuthenticator
    assert c.SharedCodeAuthenticator.access_code == "open-sesame"
    assert c.Authenticator.admin_users == {"instructor"}


def test_github_auth_is_configured_from_settings() -> None:
    c = Config()
    hub_config.apply_auth(
        c,
        parse_settings(
            "auth: {mode: github, github: {client_id: id, client_secret: s3cret, allowed_organizations: [carpentries]}}\n"
        ),
    )
    assert c.JupyterHub.authenticator_class == "oauthenticator.github.GitHubOAuthenticator"
    assert c.GitHubOAuthenticator.client_secret == "s3cret"
    assert c.GitHubOAuthenticator.allowed_organizations == {"carpentries"}


def test_culler_is_a_service_with_the_timeout() -> None:
    c = Config()
    hub_config.apply_culler(c, settings_of("culling: {idle_timeout: 1800, every: 60}\n"))
    command = c.JupyterHub.services[0]["command"]
    assert "--timeout=1800" in command and "--cull-every=60" in command
    assert "delete:servers" in c.JupyterHub.load_roles[0]["scopes"]


def test_gpu_allocator_is_rebuilt_from_running_containers() -> None:
    from hub.spawner import WorkshopSpawner

    c = Config()
    settings = settings_of("resources: {gpu: {policy: whole, per_learner: 1, devices: ['0', '1']}}\n")
    hub_config.apply_gpu(c, settings, running=[("ada", {"org.dlworkshop.gpu.devices": "1"})])
    assert WorkshopSpawner.gpu_allocator.assignments["ada"].device_ids == ("1",)
    assert WorkshopSpawner.gpu_allocator.allocate("grace").device_ids == ("0",)


def test_shared_code_checks_code_and_name() -> None:
    from hub.auth import SharedCodeAuthenticator

    auth = SharedCodeAuthenticator(access_code="open-sesame")
    assert auth.check("ada", "open-sesame") == "ada"
    assert auth.check("ada", "wrong") is None
    assert auth.check("../etc", "open-sesame") is None


def test_repeated_failures_are_rate_limited() -> None:
    import asyncio

    from hub.auth import SharedCodeAuthenticator

    auth = SharedCodeAuthenticator(access_code="open-sesame", attempts_per_minute=3)

    class Request:
        remote_ip = "10.0.0.9"

    class Handler:
        request = Request()

    async def attempt(code: str) -> object:
        return await auth.authenticate(Handler(), {"username": "ada", "password": code})

    for _ in range(3):
        assert asyncio.run(attempt("wrong")) is None
    assert asyncio.run(attempt("open-sesame")) is None  # locked out for the minute
