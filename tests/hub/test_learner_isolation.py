"""What a learner's container may and may not do on the workshop hub."""

from __future__ import annotations

import http.server
import socket
import subprocess
import threading
from collections.abc import Iterator

import docker
import httpx
import pytest

from dlworkshop.docker_host.firewall import HOST_COMMENT
from tests.conftest import docker_cli
from tests.fixtures.hub import RunningHub

pytestmark = [pytest.mark.docker, pytest.mark.hub]


@pytest.fixture(scope="module")
def learner(running_hub: RunningHub) -> str:
    running_hub.start_server("iso-ada")
    return "iso-ada"


def run_in(running_hub: RunningHub, name: str, command: str) -> tuple[int, str]:
    result = running_hub.container(name).exec_run(["bash", "-c", command], user="1000")
    return result.exit_code, result.output.decode(errors="replace")


def test_runs_as_uid_1000_with_no_capabilities_and_no_privilege_escalation(
    running_hub: RunningHub, learner: str
) -> None:
    container = running_hub.container(learner)
    host = container.attrs["HostConfig"]
    assert container.attrs["Config"]["User"] == "1000"
    assert host["CapDrop"] == ["ALL"]
    assert "no-new-privileges" in host["SecurityOpt"]
    assert host["PidsLimit"] == 256
    assert host["Memory"] == 2 * 1024**3
    assert host["CpuQuota"] / host["CpuPeriod"] == 1
    code, output = run_in(running_hub, learner, "id -u; grep CapEff /proc/self/status")
    assert code == 0 and output.split()[0] == "1000"
    assert output.split()[-1] == "0000000000000000"


def test_runs_no_docker_health_check(running_hub: RunningHub, learner: str) -> None:
    """An idle learner costs no CPU: the image's HEALTHCHECK is off for hub-spawned containers."""
    container = running_hub.container(learner)
    assert container.attrs["Config"]["Healthcheck"]["Test"] == ["NONE"]
    assert "Health" not in container.attrs["State"]


def test_has_its_quotas_in_the_environment(running_hub: RunningHub, learner: str) -> None:
    env = dict(item.split("=", 1) for item in running_hub.container(learner).attrs["Config"]["Env"])
    assert env["CPU_LIMIT"] == "1.0"
    assert env["MEM_LIMIT"] == str(2 * 1024**3)
    assert env["DLWORKSHOP_GPU_MEMORY_MB"] == "2000"
    assert env["NVIDIA_VISIBLE_DEVICES"].startswith("fake-gpu-")


def test_cannot_reach_the_docker_socket_the_hub_database_or_cloud_metadata(
    running_hub: RunningHub, learner: str
) -> None:
    _, output = run_in(
        running_hub,
        learner,
        "ls /var/run/docker.sock /srv/jupyterhub/data/jupyterhub.sqlite 2>&1;"
        " python -c \"import urllib.request; urllib.request.urlopen('http://169.254.169.254/', timeout=5)\" 2>&1 | tail -1",
    )
    assert "No such file" in output.splitlines()[0] and "No such file" in output.splitlines()[1]
    assert "timed out" in output or "Network is unreachable" in output or "refused" in output, output
    rules = subprocess.run(["iptables", "-S", "DOCKER-USER"], capture_output=True, text=True).stdout
    assert "-d 169.254.169.254/32" in rules and "-j DROP" in rules


def test_a_second_learner_cannot_open_the_first_learners_server(
    running_hub: RunningHub, learner: str
) -> None:
    owner = running_hub.login(learner)
    assert running_hub.api_get(owner, learner, "/api/contents").json()["type"] == "directory"
    intruder = running_hub.login("iso-eve")
    # The hub's OAuth step refuses to hand eve a login to ada's server.
    page = intruder.get(f"/user/{learner}/lab")
    assert page.status_code == 403 and "/hub/api/oauth2/authorize" in str(page.url)
    assert running_hub.api_get(intruder, learner, "/api/contents").status_code == 403


def test_memory_limit_kills_the_learners_process_not_the_hub(running_hub: RunningHub, learner: str) -> None:
    code, _ = run_in(running_hub, learner, "python -c 'b = bytearray(3 * 1024**3); print(len(b))'")
    assert code != 0
    assert httpx.get(f"{running_hub.url}/hub/api", timeout=10).status_code == 200


@pytest.fixture
def host_service() -> Iterator[int]:
    """A service on the host's 0.0.0.0, as sshd, a Docker TCP socket or an exporter would be."""
    server = http.server.ThreadingHTTPServer(("0.0.0.0", 0), http.server.SimpleHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def host_addresses(running_hub: RunningHub) -> list[str]:
    """The host as a learner could address it: its address on the learners' bridge, and its
    address on the outside network."""
    network = docker.from_env().networks.get(running_hub.settings.hub.network)
    gateway = network.attrs["IPAM"]["Config"][0]["Gateway"]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))  # no packet is sent: only the route is looked up
        outside = probe.getsockname()[0]
    return [gateway, outside]


CONNECT = "python -c \"import socket; socket.create_connection(('{address}', {port}), timeout=4); print('reached')\" 2>&1 | tail -1"


def test_a_learner_cannot_reach_a_host_service_and_the_hub_still_works(
    running_hub: RunningHub, learner: str, host_service: int
) -> None:
    # The service answers a container on another network, so the learners' firewall is what stops them.
    control = subprocess.run(
        [docker_cli(), "run", "--rm", "--network", "bridge", "--entrypoint", "bash",
         running_hub.settings.image.reference, "-c",
         CONNECT.format(address=host_addresses(running_hub)[1], port=host_service)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert control.stdout.strip() == "reached", control.stdout + control.stderr
    for address in host_addresses(running_hub):
        _, output = run_in(running_hub, learner, CONNECT.format(address=address, port=host_service))
        assert "reached" not in output and "timed out" in output, (address, output)
    rules = subprocess.run(["iptables", "-S", "INPUT"], capture_output=True, text=True).stdout
    assert HOST_COMMENT in rules
    # The hub, reached over the same bridge, still serves the learner.
    owner = running_hub.login(learner)
    assert running_hub.api_get(owner, learner, "/api/contents").status_code == 200
    assert httpx.get(f"{running_hub.url}/hub/api", timeout=10).status_code == 200
