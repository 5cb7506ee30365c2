"""A site's own JupyterHub configuration survives the workshop's: the services and roles a platform
or a site declared before ours (Z2JH's hub.services and hub.loadRoles) are merged with ours, and a
jupyterhub_config.d folder (hub.extra_config) is loaded after ours in name order, through
traitlets' own loader, on the real jupyterhub_config.py and on the running test hub."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import pytest
from traitlets.config import Config, PyFileConfigLoader

from dlworkshop import contract
from dlworkshop.docker_host.hub_runtime import hub_container_spec, hub_settings
from dlworkshop.errors import ConfigError
from dlworkshop.settings import parse_settings
from hub import config as hub_config
from hub.state import HubState
from tests.conftest import REPO
from tests.fixtures.hub import SITE_HUB_CONFIG, SITE_SERVICE, SITE_SERVICE_TOKEN, RunningHub

BASE = "auth: {mode: shared-code, access_code: open-sesame, admins: [instructor]}\n"


@pytest.fixture
def state(tmp_path: Path) -> HubState:
    return HubState(
        data=tmp_path,
        proxy_token="proxy-token",
        prewarm_token="prewarm-token",
        auth_state_key="ab" * 32,
        room_token="room-token",
    )


def test_services_and_roles_declared_before_ours_are_kept_and_merged(state: HubState) -> None:
    """As the chart lists them before hub.extraConfig runs configure: the operator's own service
    and role stay; a service both name keeps its keys (the chart's token); a role both name holds
    the scopes and members of both."""
    c = Config()
    c.JupyterHub.services = [
        {"name": "grafana", "api_token": "grafana-token", "url": "http://grafana:3000"},
        {"name": contract.PREWARM_SERVICE, "api_token": "token-the-chart-keeps"},
    ]
    c.JupyterHub.load_roles = [
        {"name": "grafana", "scopes": ["read:metrics"], "services": ["grafana"]},
        {"name": contract.ROOM_ROLE, "users": ["site-admin"]},
    ]
    hub_config.configure(c, parse_settings(BASE), state)
    services = {service["name"]: service for service in c.JupyterHub.services}
    assert services["grafana"] == {
        "name": "grafana",
        "api_token": "grafana-token",
        "url": "http://grafana:3000",
    }
    assert services[contract.PREWARM_SERVICE]["api_token"] == "token-the-chart-keeps"
    assert {contract.CULLER_SERVICE, contract.ROOM_SERVICE} <= set(services)
    roles = {role["name"]: role for role in c.JupyterHub.load_roles}
    assert roles["grafana"] == {"name": "grafana", "scopes": ["read:metrics"], "services": ["grafana"]}
    room = roles[contract.ROOM_ROLE]
    assert room["users"] == ["instructor", "site-admin"] and room["scopes"] == [contract.ROOM_SCOPE]
    assert room["services"] == [contract.ROOM_SERVICE]
    assert len(roles) == len(c.JupyterHub.load_roles)  # JupyterHub refuses a role defined twice
    assert {contract.CULLER_SERVICE, contract.PREWARM_SERVICE} <= set(roles)


def test_an_append_on_a_fresh_config_is_kept_too(state: HubState) -> None:
    c = Config()
    c.JupyterHub.services.append({"name": "site-monitor", "api_token": "t"})
    hub_config.configure(c, parse_settings(BASE), state)
    assert "site-monitor" in {service["name"] for service in c.JupyterHub.services}


def load_jupyterhub_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, site_files: dict[str, str]
) -> Config:
    """The repository's jupyterhub_config.py as JupyterHub loads it (traitlets' file loader), on a
    hub home with a workshop.yaml and the site's jupyterhub_config.d."""
    home = tmp_path / "hub-home"
    (home / "data").mkdir(parents=True)
    (home / "workshop.yaml").write_text(BASE)
    folder = Path(contract.HUB_EXTRA_CONFIG.name)
    (home / folder).mkdir()
    for name, text in site_files.items():
        (home / folder / name).write_text(text)
    monkeypatch.setenv(contract.HUB_HOME_ENV, str(home))
    monkeypatch.setenv(contract.CONFIG_ENV, str(home / "workshop.yaml"))
    return PyFileConfigLoader("jupyterhub_config.py", str(REPO)).load_config()


def test_jupyterhub_config_d_files_load_after_ours_in_name_order_and_win(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = load_jupyterhub_config(
        tmp_path,
        monkeypatch,
        {
            "20-later.py": "c.JupyterHub.template_vars.update({'banner': 'second'})\n",
            "10-first.py": (
                "c.JupyterHub.template_vars.update({'banner': 'first', 'workshop_name': 'the site'})\n"
                "c.JupyterHub.services.append({'name': 'site-monitor', 'api_token': 't'})\n"
                "c.Authenticator.admin_users = {'site-admin'}\n"
            ),
            "README.txt": "c.JupyterHub.template_vars = {}  # not a .py file: not loaded\n",
        },
    )
    # Later files win over earlier ones, and every file over ours; what they add is added to ours.
    assert c.JupyterHub.template_vars == {"workshop_name": "the site", "banner": "second"}
    assert c.Authenticator.admin_users == {"site-admin"}
    names = [service["name"] for service in c.JupyterHub.services]
    assert names[-1] == "site-monitor" and contract.CULLER_SERVICE in names
    # The workshop's own configuration is there underneath.
    assert c.JupyterHub.authenticator_class.__name__ == "SharedCodeAuthenticator"


def test_without_a_site_folder_the_hub_loads_only_ours(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = load_jupyterhub_config(tmp_path, monkeypatch, {})
    assert c.JupyterHub.template_vars == {"workshop_name": parse_settings(BASE).workshop.name}


def test_the_site_folder_is_mounted_into_the_hub_and_not_named_in_its_settings(tmp_path: Path) -> None:
    settings = parse_settings(BASE + f"hub: {{extra_config: {SITE_HUB_CONFIG}}}\n")
    assert settings.hub.extra_config == SITE_HUB_CONFIG
    spec = hub_container_spec(settings, "/x/workshop.yaml", extra_config=str(SITE_HUB_CONFIG))
    assert spec["volumes"][str(SITE_HUB_CONFIG)] == {"bind": str(contract.HUB_EXTRA_CONFIG), "mode": "ro"}
    assert "extra_config" not in hub_settings(settings)["hub"]  # a path on this machine only
    assert str(contract.HUB_EXTRA_CONFIG) not in str(
        hub_container_spec(parse_settings(BASE), "/x/workshop.yaml")
    )


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        parse_settings(text, source="workshop.yaml")
    return raised.value.problems


# The settings' refusal of hub.extra_config, as one problem line (run as another user where root
# would read anything).
REFUSAL = """
import sys
from dlworkshop.errors import ConfigError
from dlworkshop.settings import parse_settings
try:
    parse_settings(sys.argv[1], source="workshop.yaml")
except ConfigError as error:
    print(*error.problems, sep="\\n")
"""
NOBODY = 65534


def refusal(text: str) -> str:
    as_nobody = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    result = subprocess.run(
        [*(as_nobody if os.geteuid() == 0 else []), sys.executable, "-c", REFUSAL, text],
        capture_output=True,
        text=True,
        cwd="/",
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_the_site_folder_must_be_a_readable_folder_of_python_files() -> None:
    """Missing, a file, no *.py file: refused as such; a folder or file this user cannot read:
    refused as a permission problem (never as a missing file)."""
    root = Path(tempfile.mkdtemp(prefix="dlw-site-config-"))
    try:
        root.chmod(0o755)  # the folders below are what this user may or may not read
        (root / "empty").mkdir()
        (root / "file.py").write_text("")
        for name in ("closed", "unreadable", "open"):
            (root / name).mkdir()
            (root / name / "10-site.py").write_text("")
        (root / "unreadable" / "10-site.py").chmod(0o600)
        (root / "closed").chmod(0o700)
        for name, message in (
            ("missing", "does not exist or is not a folder"),
            ("file.py", "does not exist or is not a folder"),
            ("empty", "holds no *.py file"),
            ("closed", "permission denied reading the folder"),
            ("unreadable", "permission denied reading 10-site.py"),
        ):
            problem = refusal(BASE + f"hub: {{extra_config: {root / name}}}\n")
            assert "hub.extra_config" in problem and message in problem, (name, problem)
        assert refusal(BASE + f"hub: {{extra_config: {root / 'open'}}}\n") == ""
    finally:
        shutil.rmtree(root)


def test_kubernetes_refuses_the_folder_for_the_charts_hub_extra_config() -> None:
    (problem,) = problems(BASE + f"hub: {{backend: kubernetes, extra_config: {SITE_HUB_CONFIG}}}\n")
    assert "hub.extra_config" in problem and "hub.extraConfig of your own values" in problem


@pytest.mark.docker
@pytest.mark.hub
def test_the_running_hub_loads_the_sites_jupyterhub_config_d_beside_the_workshops(
    running_hub: RunningHub,
) -> None:
    """tests/fixtures/site_hub_config/50-site.py, shipped by `dlworkshop up` from hub.extra_config:
    its service answers with its token, next to the workshop's own services."""
    site = httpx.get(
        f"{running_hub.url}/hub/api/user",
        headers={"Authorization": f"token {SITE_SERVICE_TOKEN}"},
        timeout=30,
    )
    assert site.status_code == 200, site.text
    assert site.json()["kind"] == "service" and site.json()["name"] == SITE_SERVICE
    # Its role (list:services) lists every service: the workshop's are there beside it.
    listed = httpx.get(
        f"{running_hub.url}/hub/api/services",
        headers={"Authorization": f"token {SITE_SERVICE_TOKEN}"},
        timeout=30,
    )
    assert listed.status_code == 200, listed.text
    assert {SITE_SERVICE, contract.CULLER_SERVICE, contract.PREWARM_SERVICE} <= set(listed.json())
    assert f"loading the site's {contract.HUB_EXTRA_CONFIG}/50-site.py" in running_hub.log()


def test_the_deploy_ships_the_site_folder_to_the_docker_and_the_slurm_hub() -> None:
    from dlworkshop.deploy.playbook_vars import cluster_playbook_vars, playbook_vars

    shipped = [{"name": "50-site.py", "src": str(SITE_HUB_CONFIG / "50-site.py")}]
    docker = playbook_vars(parse_settings(BASE + f"hub: {{extra_config: {SITE_HUB_CONFIG}}}\n"))
    assert docker["workshop_hub_extra_config_files"] == shipped
    folder = docker["workshop_hub_extra_config_dir"]
    assert f"{folder}:{contract.HUB_EXTRA_CONFIG}:ro" in docker["workshop_hub_container"]["volumes"]
    assert "extra_config" not in docker["workshop_hub_settings"]["hub"]
    plain = playbook_vars(parse_settings(BASE))
    assert plain["workshop_hub_extra_config_files"] == []
    assert not any(
        str(contract.HUB_EXTRA_CONFIG) in volume for volume in plain["workshop_hub_container"]["volumes"]
    )
    slurm = parse_settings(BASE + f"hub: {{backend: slurm, extra_config: {SITE_HUB_CONFIG}}}\n")
    cluster = cluster_playbook_vars(slurm, Path("/env.tar"), "env-id", Path("/hub.tar"), "hub-id")
    assert cluster["workshop_cluster_hub_extra_config_files"] == shipped
    # Where the hub on the login node looks: contract.hub_extra_config() under its home.
    home = cluster["workshop_cluster_hub_home"]
    assert cluster["workshop_cluster_hub_extra_config_dir"] == f"{home}/{contract.HUB_EXTRA_CONFIG.name}"
