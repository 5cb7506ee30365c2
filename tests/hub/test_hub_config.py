"""hub.config against a plain traitlets Config, as JupyterHub would receive it: each applier sets
its own keys, the Docker backend sets the engine's, and the result is checked against
dlworkshop/contract.py."""

from __future__ import annotations

import stat
from pathlib import Path
from types import SimpleNamespace

import pytest
from traitlets.config import Config

from dlworkshop import contract
from dlworkshop.settings import parse_settings
from hub import config as hub_config
from hub.backends import backend_for
from hub.backends.docker import DockerBackend, WorkshopDockerSpawner
from hub.backends.gpu_allocator import GpuAllocator
from hub.state import HubState

BASE = "auth: {mode: shared-code, access_code: open-sesame, admins: [instructor]}\n"


def settings_of(extra: str = ""):  # type: ignore[no-untyped-def]
    return parse_settings(BASE + extra)


@pytest.fixture
def state(tmp_path: Path) -> HubState:
    return HubState(
        data=tmp_path, proxy_token="proxy-token", prewarm_token="prewarm-token", auth_state_key="ab" * 32
    )


def test_state_is_read_once_and_kept_across_restarts(tmp_path: Path) -> None:
    first = HubState.load(tmp_path)
    for secret in (contract.PROXY_TOKEN_FILE, contract.AUTH_STATE_KEY_FILE):
        assert stat.S_IMODE((tmp_path / secret).stat().st_mode) == 0o600
    assert len(bytes.fromhex(first.auth_state_key)) == 32  # what JupyterHub's CryptKeeper takes
    assert HubState.load(tmp_path) == first


def test_configure_only_sets_and_matches_the_contract(state: HubState) -> None:
    c = Config()
    settings = settings_of()
    hub_config.configure(c, settings, state)
    assert c.JupyterHub.cleanup_servers is False
    assert c.JupyterHub.tornado_settings["slow_spawn_timeout"] == 0  # API starts answered at once
    assert c.JupyterHub.db_url == f"sqlite:///{state.data / contract.DATABASE_FILE}"
    assert c.JupyterHub.cookie_secret_file == str(state.data / contract.COOKIE_SECRET_FILE)
    assert c.ConfigurableHTTPProxy.auth_token == "proxy-token"
    # The proxy's pid file is emptied with the hub's runtime folder at every start of the hub.
    assert Path(c.ConfigurableHTTPProxy.pid_file).parent == Path(contract.HUB_RUNTIME)
    assert c.JupyterHub.bind_url == f"http://0.0.0.0:{contract.HUB_PORT}"
    assert c.JupyterHub.hub_port == contract.HUB_API_PORT
    assert c.JupyterHub.hub_connect_ip == settings.hub.container_name
    assert c.Spawner.notebook_dir == contract.learner.WORK_FOLDER
    # Hub-spawned learners run no Docker health check (the spawner polls the server itself).
    assert c.DockerSpawner.extra_create_kwargs == {
        "user": str(contract.learner.UID),
        "healthcheck": {"test": ["NONE"]},
    }
    assert c.DockerSpawner.name_template == contract.learner_container_name(settings.hub.container_name)
    assert c.DockerSpawner.volumes == {
        contract.work_volume_name(settings.hub.container_name): {
            "bind": contract.learner.WORK_FOLDER,
            "mode": "rw",
        },
        contract.shared_volume_name(settings.hub.container_name): {
            "bind": contract.learner.SHARED_FOLDER,
            "mode": "rw",
        },
    }
    services = {service["name"] for service in c.JupyterHub.services}
    roles = {role["name"] for role in c.JupyterHub.load_roles}
    # shared-code: admins release names through a service (JupyterHub checks their tokens), and
    # learners read their own auth_state.
    assert services == {contract.CULLER_SERVICE, contract.PREWARM_SERVICE, contract.NAMES_SERVICE}
    # ...and admins read the room view (dlworkshop status).
    assert roles == {contract.CULLER_SERVICE, contract.PREWARM_SERVICE, "user", contract.ROOM_ROLE}
    names = next(service for service in c.JupyterHub.services if service["name"] == contract.NAMES_SERVICE)
    assert names["command"][-4:] == ["hub.claims", "--file", str(state.data / contract.CLAIMS_FILE), "serve"]
    assert names["url"] == f"http://127.0.0.1:{contract.NAMES_SERVICE_PORT}"
    # The same settings configure the same hub: no applier appends to another's list.
    again = Config()
    hub_config.configure(again, settings, state)
    assert again == c


def test_spawner_limits_volume_and_network() -> None:
    c = Config()
    DockerBackend(settings_of("resources: {cpu: 2, memory: 4G}\nhub: {network: ws-net}\n")).configure(c)
    assert c.JupyterHub.spawner_class is WorkshopDockerSpawner
    assert c.DockerSpawner.image == "dlworkshop/learner:latest"
    assert c.Spawner.cpu_limit == 2 and c.Spawner.mem_limit == 4 * 1024**3
    assert c.DockerSpawner.network_name == "ws-net"
    assert c.DockerSpawner.volumes["dlworkshop-hub-work-{raw_username}"] == {
        "bind": "/home/jovyan/work",
        "mode": "rw",
    }
    assert c.DockerSpawner.name_template == "dlworkshop-hub-learner-{raw_username}"
    assert c.DockerSpawner.remove is True
    # The hub removes a learner's container when it stops it; Docker does not on exit, so an engine
    # restart with live-restore leaves it running (moby/moby#46308, Docker < 24.0.8).
    assert c.DockerSpawner.extra_host_config["auto_remove"] is False
    assert c.DockerSpawner.pull_policy == "never"


def test_security_drops_everything() -> None:
    c = Config()
    DockerBackend(settings_of("resources: {pids: 300}\n")).configure(c)
    host = c.DockerSpawner.extra_host_config
    assert (
        host["cap_drop"] == ["ALL"]
        and host["security_opt"] == ["no-new-privileges"]
        and host["pids_limit"] == 300
    )


def test_the_root_is_read_only_and_scratch_space_is_bounded_memory() -> None:
    c = Config()
    DockerBackend(settings_of("resources: {memory: 1G}\n")).configure(c)
    host = c.DockerSpawner.extra_host_config
    assert host["read_only"] is True
    # A quarter of the memory each (what is written there counts against it).
    assert host["tmpfs"]["/tmp"].endswith("size=268435456,mode=1777")
    assert f"size=268435456,mode=0755,uid={contract.learner.UID}" in host["tmpfs"][contract.learner.HOME]
    big = Config()
    DockerBackend(settings_of("resources: {memory: 8G, tmp: 2G}\n")).configure(big)
    assert f"size={2 * 1024**3}," in big.DockerSpawner.extra_host_config["tmpfs"]["/tmp"]


def test_a_learners_container_log_is_capped_by_its_own_options() -> None:
    """Whatever the engine's defaults, the container says how much of its output is kept."""
    default = Config()
    DockerBackend(settings_of()).configure(default)
    assert default.DockerSpawner.extra_host_config["log_config"] == {
        "Type": "json-file",
        "Config": {"max-size": str(10 * 2**20 - contract.LOG_ENTRY_MAX), "max-file": "3"},
    }
    small = Config()
    DockerBackend(settings_of("resources: {log_max: 3M}\n")).configure(small)
    config = small.DockerSpawner.extra_host_config["log_config"]["Config"]
    assert (int(config["max-size"]) + contract.LOG_ENTRY_MAX) * int(config["max-file"]) <= 3 * 2**20


def test_work_folders_are_claimed_from_prepared_slots_unless_the_quota_is_off() -> None:
    c = Config()
    DockerBackend(settings_of()).configure(c)
    assert c.WorkshopDockerSpawner.work_quota is True
    off = Config()
    DockerBackend(settings_of("resources: {disk: null}\n")).configure(off)
    assert off.WorkshopDockerSpawner.work_quota is False


def test_extra_mounts_are_read_only_and_extra_env_is_every_learners() -> None:
    c = Config()
    DockerBackend(
        settings_of(
            "resources:\n"
            "  extra_mounts: [{source: /srv/datasets, target: /data/site}]\n"
            "  extra_env: {HF_HUB_OFFLINE: '1'}\n"
            "  shared_folder: false\n"
        )
    ).configure(c)
    assert c.DockerSpawner.read_only_volumes == {"/srv/datasets": "/data/site"}
    assert c.DockerSpawner.environment == {"HF_HUB_OFFLINE": "1"}
    assert list(c.DockerSpawner.volumes) == ["dlworkshop-hub-work-{raw_username}"]


def test_the_hubs_proxy_serves_tls_only_where_up_mounted_a_certificate(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from hub.backends import docker as docker_backend

    plain = Config()
    DockerBackend(settings_of()).configure(plain)
    assert plain.JupyterHub.bind_url == f"http://0.0.0.0:{contract.HUB_PORT}"
    assert "ssl_cert" not in plain.JupyterHub
    (tmp_path / "fullchain.pem").write_text("cert")
    monkeypatch.setattr(docker_backend.contract, "HUB_TLS_CERT", tmp_path / "fullchain.pem")
    tls = Config()
    DockerBackend(settings_of()).configure(tls)
    assert tls.JupyterHub.bind_url == f"https://0.0.0.0:{contract.HUB_PORT}"
    assert tls.JupyterHub.ssl_cert == str(tmp_path / "fullchain.pem")


def test_the_backend_comes_from_the_settings() -> None:
    assert isinstance(backend_for(settings_of()), DockerBackend)


def test_shared_code_auth_and_admins(state: HubState) -> None:
    from hub.auth import SharedCodeAuthenticator

    c = Config()
    hub_config.apply_auth(c, settings_of(), state)
    assert c.JupyterHub.authenticator_class is SharedCodeAuthenticator
    assert c.SharedCodeAuthenticator.access_code == "open-sesame"
    assert c.SharedCodeAuthenticator.seats_file == str(state.data / contract.SEATS_FILE)
    assert c.SharedCodeAuthenticator.claims_file == str(state.data / contract.CLAIMS_FILE)
    assert c.Authenticator.admin_users == {"instructor"}
    assert c.RateLimitedAuthenticator.attempts_per_minute == 5
    assert c.RateLimitedAuthenticator.attempts_per_minute_per_address == 30
    # The name typed rides in auth_state, encrypted with the hub volume's key; a learner's server
    # may read it (and their name) with its own token, and nothing more than JupyterHub's default.
    assert c.SharedCodeAuthenticator.enable_auth_state is True
    assert c.CryptKeeper["keys"] == [state.auth_state_key]
    assert set(c.Spawner.server_token_scopes) == {
        "users:activity!user",
        "access:servers!server",
        "read:users:name!user",
        "admin:auth_state!user",
    }


def test_other_modes_keep_jupyterhubs_learner_role(state: HubState, tmp_path: Path) -> None:
    accounts = tmp_path / "accounts.csv"
    accounts.write_text("username,password_hash\n")
    c = Config()
    hub_config.configure(
        c, parse_settings(f"auth: {{mode: accounts, accounts_file: {accounts}}}\n"), state, tmp_path / "w"
    )
    assert "user" not in {role["name"] for role in c.JupyterHub.load_roles}
    assert contract.NAMES_SERVICE not in {service["name"] for service in c.JupyterHub.services}
    assert "enable_auth_state" not in c.AccountsAuthenticator and "server_token_scopes" not in c.Spawner


def test_github_auth_is_configured_from_settings(state: HubState) -> None:
    c = Config()
    hub_config.apply_auth(
        c,
        parse_settings(
            "auth: {mode: github, github: {client_id: id, client_secret: s3cret, allowed_organizations: [carpentries]}}\n"
        ),
        state,
    )
    assert c.JupyterHub.authenticator_class == "oauthenticator.github.GitHubOAuthenticator"
    assert c.GitHubOAuthenticator.client_secret == "s3cret"
    assert c.GitHubOAuthenticator.allowed_organizations == {"carpentries"}


def test_culler_is_a_service_with_the_timeout(state: HubState) -> None:
    c = Config()
    hub_config.apply_services(
        c, settings_of("culling: {idle_timeout: 1800, every: 60}\n"), state, Path("w.yaml")
    )
    culler = next(s for s in c.JupyterHub.services if s["name"] == contract.CULLER_SERVICE)
    assert "--timeout=1800" in culler["command"] and "--cull-every=60" in culler["command"]
    role = next(r for r in c.JupyterHub.load_roles if r["name"] == contract.CULLER_SERVICE)
    assert "delete:servers" in role["scopes"]


def test_gpu_allocator_is_rebuilt_from_running_containers_at_first_use(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from hub.backends import docker as docker_backend
    from hub.backends.base import LearnerServer

    labels = {contract.LABEL_USER: "ada", contract.LABEL_GPU_DEVICES: "1"}
    running = [LearnerServer("ada", "c1", "running", labels=labels)]
    monkeypatch.setattr(docker_backend, "learner_containers", lambda client, hub: running)
    monkeypatch.setattr(WorkshopDockerSpawner, "_gpu_allocator", None)
    c = Config()
    DockerBackend(
        settings_of("resources: {gpu: {policy: whole, per_learner: 1, devices: ['0', '1']}}\n")
    ).configure(c)
    spawner = WorkshopDockerSpawner(config=c, user=SimpleNamespace(name="grace", id=2, url="/user/grace/"))
    monkeypatch.setattr(WorkshopDockerSpawner, "client", None)
    allocator: GpuAllocator = spawner.gpu_allocator
    assert allocator.assignments["ada"].device_ids == ("1",)
    assert allocator.allocate("grace").device_ids == ("0",)
    assert spawner.gpu_allocator is allocator  # one for the hub, built once


def test_docker_learner_servers_come_from_the_hubs_labels() -> None:
    from hub.backends.docker import learner_containers

    class FakeApi:
        def containers(self, all: bool, filters: dict[str, str]) -> list[dict[str, object]]:
            assert filters == {"label": f"{contract.LABEL_HUB}=my-hub"}
            return [
                {"Id": "a", "State": "running", "Labels": {contract.LABEL_USER: "ada"}},
                {"Id": "b", "State": "exited", "Labels": {contract.LABEL_USER: "bo"}},
                {"Id": "c", "State": "running", "Labels": {}},  # not a learner's
            ]

    servers = learner_containers(FakeApi(), "my-hub")  # type: ignore[arg-type]
    assert [(s.user, s.state) for s in servers] == [("ada", "running"), ("bo", "stopped")]


def test_the_spawn_page_reconnects_to_the_progress_stream_by_itself() -> None:
    """Rendered as JupyterHub renders it (its own templates under `templates/`, ours first); the
    browser test (tests/hub/test_faults.py) watches it carry a learner through a hub restart."""
    from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PrefixLoader
    from jupyterhub.app import JupyterHub

    jupyterhub_templates = JupyterHub()._template_paths_default()[0]
    loader = ChoiceLoader(
        [
            PrefixLoader({"templates": FileSystemLoader([jupyterhub_templates])}, "/"),
            FileSystemLoader([str(hub_config.TEMPLATES), jupyterhub_templates]),
        ]
    )
    page = (
        Environment(loader=loader, autoescape=True)
        .get_template("spawn_pending.html")
        .render(
            progress_url="/hub/api/users/ada/server/progress?_xsrf=x",
            base_url="/hub/",
            static_url=lambda *args, **kwargs: "/hub/static/",
        )
    )
    assert 'var progressUrl = "/hub/api/users/ada/server/progress?_xsrf=x";' in page
    assert 'id="progress-bar"' in page  # JupyterHub's own markup, kept
    assert "no need to reload" in page
    assert "source.onerror" in page and "window.setTimeout(connect, delayMs)" in page
    assert page.count("new EventSource(") == 1  # JupyterHub's own script, which gives up, is replaced
