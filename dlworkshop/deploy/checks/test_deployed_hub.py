"""A deployed workshop host, checked from outside as an admin would: each test is one promise of
the deploy. Runs through `dlworkshop verify -i INVENTORY` (pytest-testinfra, one run per host)."""

from __future__ import annotations

import json
import shlex
from typing import Any

import pytest

from dlworkshop import contract

TLS_PROBE = """
import json, socket, ssl, sys
domain, ca_file, ca_pem = sys.argv[1], sys.argv[2] or None, sys.argv[3] or None
context = ssl.create_default_context(cafile=ca_file, cadata=ca_pem)
try:
    with socket.create_connection(("127.0.0.1", 443), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=domain) as tls:
            tls.sendall(f"GET /hub/health HTTP/1.1\\r\\nHost: {domain}\\r\\nConnection: close\\r\\n\\r\\n".encode())
            reply = tls.recv(200).decode(errors="replace")
    print(json.dumps({"ok": True, "status": reply.split("\\r\\n")[0]}))
except Exception as exc:
    print(json.dumps({"ok": False, "error": f"{type(exc).__name__}: {exc}"}))
"""


def docker_inspect(host: Any, kind: str, name: str) -> dict[str, Any]:
    result = host.run(f"docker {kind} inspect {shlex.quote(name)}")
    assert result.rc == 0, f"{kind} {name} is missing: {result.stderr.strip()}"
    return json.loads(result.stdout)[0]


def test_docker_is_active_and_enabled(host: Any) -> None:
    docker = host.service("docker")
    assert docker.is_running, "the Docker engine is not running"
    assert docker.is_enabled, "the Docker engine does not start at boot"


def test_learner_image_present_with_its_labels(host: Any, expected: dict[str, Any]) -> None:
    labels = docker_inspect(host, "image", expected["learner_image"])["Config"]["Labels"] or {}
    for label in (contract.LABEL_VARIANT, contract.LABEL_LOCK_SHA256, contract.LABEL_REVISION):
        assert label in labels, f"{expected['learner_image']} lacks the label {label}"


def test_hub_image_present_with_its_labels(host: Any, expected: dict[str, Any]) -> None:
    labels = docker_inspect(host, "image", expected["hub_image"])["Config"]["Labels"] or {}
    assert labels.get(contract.LABEL_TITLE) == "dlworkshop hub"


def test_hub_container_running_healthy_and_restarting(host: Any, expected: dict[str, Any]) -> None:
    container = docker_inspect(host, "container", expected["hub_container"])
    state = container["State"]
    assert state["Running"], f"the hub container is {state['Status']}"
    assert (state.get("Health") or {}).get("Status") == "healthy", (
        f"the hub is not healthy: {state.get('Health')}"
    )
    assert container["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    assert expected["hub_network"] in container["NetworkSettings"]["Networks"]


def test_https_answers_with_a_valid_chain_for_the_name(host: Any, expected: dict[str, Any]) -> None:
    probe = host.run(
        "python3 -c {} {} {} {}".format(
            shlex.quote(TLS_PROBE),
            shlex.quote(expected["tls_domain"]),
            shlex.quote(expected["tls_ca_file"] or ""),
            shlex.quote(expected.get("tls_ca_pem") or ""),
        )
    )
    outcome = json.loads(probe.stdout or '{"ok": false, "error": "no output"}')
    assert outcome["ok"], f"https://{expected['tls_domain']} on 443: {outcome.get('error')}"
    assert " 200 " in outcome["status"] + " ", (
        f"the hub's health page through 443 answered {outcome['status']}"
    )


def test_http_redirects_to_https(host: Any, expected: dict[str, Any]) -> None:
    result = host.run(
        "python3 -c {}".format(
            shlex.quote(
                "import http.client; c = http.client.HTTPConnection('127.0.0.1', 80, timeout=10); "
                "c.request('GET', '/hub/login'); r = c.getresponse(); print(r.status, r.getheader('Location'))"
            )
        )
    )
    status, _, location = result.stdout.strip().partition(" ")
    assert status in ("301", "308"), f"port 80 answered {result.stdout.strip() or result.stderr.strip()}"
    assert location == f"https://{expected['tls_domain']}/hub/login"


def test_idle_culler_service_runs_in_the_hub(host: Any, expected: dict[str, Any]) -> None:
    processes = host.run(f"docker top {shlex.quote(expected['hub_container'])} -eo pid,args")
    assert processes.rc == 0, processes.stderr
    assert "jupyterhub_idle_culler" in processes.stdout, "the idle culler is not running as a hub service"


def test_learners_are_kept_off_the_metadata_address(host: Any, expected: dict[str, Any]) -> None:
    rules = host.iptables.rules("filter", "DOCKER-USER")
    assert any(
        f"-i {expected['hub_bridge']}" in rule and contract.METADATA_ADDRESS in rule and "-j DROP" in rule
        for rule in rules
    ), f"no DROP rule for {contract.METADATA_ADDRESS} from {expected['hub_bridge']} in DOCKER-USER: {rules}"


def test_learners_are_kept_off_the_hosts_own_services(host: Any, expected: dict[str, Any]) -> None:
    rules = host.iptables.rules("filter", "INPUT")
    assert any(
        f"-i {expected['hub_bridge']}" in rule and "--ctstate NEW" in rule and "-j DROP" in rule
        for rule in rules
    ), f"no DROP rule for new connections from {expected['hub_bridge']} in INPUT: {rules}"
    unit = host.service("dlworkshop-firewall")
    assert unit.is_enabled, "the firewall rules are not put back at boot"


def test_work_folders_have_a_size_limit(host: Any, expected: dict[str, Any]) -> None:
    if not expected["work_quota"]:
        pytest.skip("resources.disk is null: learners' work folders have no size limit")
    assert host.service("dlworkshop-work-volumes").is_enabled, "work folders are not attached at boot"
    listed = host.run(
        "docker volume ls -q --filter "
        + shlex.quote(f"label={contract.LABEL_HUB}={expected['hub_container']}")
        + " --filter "
        + shlex.quote(f"label={contract.LABEL_WORK_SLOT}")
    )
    slots = listed.stdout.split()
    assert len(slots) == expected["work_slots"], (
        f"{len(slots)} work-folder slots, not {expected['work_slots']}"
    )
    for volume in slots:
        device = docker_inspect(host, "volume", volume)["Options"]["device"]
        assert host.file(device).linked_to.startswith("/dev/loop"), f"{device} is not an attached image"


def test_learner_network_uses_the_firewalled_bridge(host: Any, expected: dict[str, Any]) -> None:
    network = docker_inspect(host, "network", expected["hub_network"])
    assert network["Options"].get("com.docker.network.bridge.name") == expected["hub_bridge"]


@pytest.mark.parametrize("secret", [contract.COOKIE_SECRET_FILE, contract.PROXY_TOKEN_FILE])
def test_hub_secrets_exist_with_mode_0600(host: Any, expected: dict[str, Any], secret: str) -> None:
    volume = docker_inspect(host, "volume", expected["hub_volume"])
    path = f"{volume['Mountpoint']}/{secret}"
    secret_file = host.file(path)
    assert secret_file.exists, f"{path} is missing"
    assert secret_file.mode == 0o600, f"{path} has mode {secret_file.mode:o}"
    assert secret_file.size > 0, f"{path} is empty"


def test_the_hubs_and_learners_logs_are_capped(host: Any, expected: dict[str, Any]) -> None:
    """The hub container and every learner's carry the cap themselves; the engine's default (any
    other container) is the same (daemon.json)."""
    wanted = {"Type": contract.LOG_DRIVER, "Config": expected["log_options"]}
    hub = docker_inspect(host, "container", expected["hub_container"])
    assert hub["HostConfig"]["LogConfig"] == wanted, hub["HostConfig"]["LogConfig"]
    learners = host.run(
        f"docker ps --quiet --filter label={contract.LABEL_HUB}={expected['hub_container']} "
        f"--filter label={contract.LABEL_USER}"
    ).stdout.split()
    for learner in learners:
        config = docker_inspect(host, "container", learner)["HostConfig"]["LogConfig"]
        assert config == wanted, f"learner container {learner}: {config}"
    daemon = json.loads(host.file("/etc/docker/daemon.json").content_string or "{}")
    assert (
        daemon.get("log-driver") == contract.LOG_DRIVER and daemon.get("log-opts") == expected["log_options"]
    )


def test_settings_file_is_private(host: Any, expected: dict[str, Any]) -> None:
    container = docker_inspect(host, "container", expected["hub_container"])
    sources = [m["Source"] for m in container["Mounts"] if m["Destination"] == str(contract.HUB_SETTINGS)]
    assert sources, "the hub container does not mount its settings file"
    assert host.file(sources[0]).mode == 0o600


def test_gpu_runtime_registered_where_gpus_exist(host: Any) -> None:
    inventory = json.loads(host.file(str(contract.HOST_GPU_INVENTORY)).content_string or "[]")
    if not inventory:
        pytest.skip("no GPUs recorded on this host (nvidia-smi found none): no GPU runtime expected")
    runtimes = host.run("docker info --format '{{json .Runtimes}}'")
    assert "nvidia" in json.loads(runtimes.stdout), "GPUs were found but Docker has no nvidia runtime"
