"""The backend interface, tested the same way for every engine: the Docker backend against the real
engine, and an in-process backend (tests/hub/fake_backend.py) that exists to prove the interface
is one a second engine can implement. Spawners are made the way JupyterHub makes them (a User with
an ORM row, a Server with its base URL), outside a running hub.

The Kubernetes backend takes the configure test only: starting, stopping and listing servers need
a cluster (an API server, a scheduler, a kubelet to run the pod), and none runs on these machines;
tests/hub/test_kubernetes_backend.py tests its pod listing and stop against a fake API."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from jupyterhub import orm
from jupyterhub.objects import Hub, Server
from jupyterhub.spawner import Spawner
from jupyterhub.user import User
from traitlets.config import Config

from dlworkshop import contract
from dlworkshop.settings import Settings, parse_settings
from hub.backends.base import Backend
from hub.spawning import START_STATE_KEY, WorkshopSpawner
from tests.hub.fake_backend import InProcessBackend, InProcessSpawner

# No work-folder quota or shared folder: their volumes are prepared by `up`, which this test skips.
SETTINGS = (
    "auth: {mode: shared-code, access_code: x}\n"
    "resources: {cpu: 0.5, memory: 512M, disk: null, shared_folder: false}\n"
)
# A learner "server" for the Docker engine: answers every request (JupyterHub's arguments that
# DockerSpawner appends land in sys.argv and are ignored). Runs in the offline base image.
SERVE = (
    "import http.server as h\n"
    "class A(h.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        self.send_response(200); self.end_headers(); self.wfile.write(b'{}')\n"
    f"h.ThreadingHTTPServer(('0.0.0.0', {contract.learner.SERVER_PORT}), A).serve_forever()\n"
)


@dataclass
class Engine:
    """One backend under test, and how to give it a server that dies while starting."""

    backend: Backend
    failing: Callable[[Config], None]
    prepare: Callable[[Config], None] = lambda c: None
    # Whether the engine says where a server it started listens (`get_url`), so a restarted hub
    # can adopt one whose start it interrupted. A Slurm job's port is known only from the job's
    # own report to the hub at its start, which the restart lost: such a start is started again.
    adopts: bool = True
    spawners: list[Spawner] = field(default_factory=list)
    db: Any = None

    def config(self, capacity: int = 1, failing: bool = False) -> Config:
        c = Config()
        self.backend.configure(c)
        c.WorkshopSpawner.start_capacity = capacity
        self.prepare(c)
        if failing:
            self.failing(c)
        return c

    def spawner(self, c: Config, name: str | None = None) -> Any:
        """A learner's spawner as JupyterHub makes one before `start`."""
        name = name or f"learner-{uuid.uuid4().hex[:6]}"
        if self.db is None:
            self.db = orm.new_session_factory("sqlite://")()
        orm_user = orm.User(name=name)
        self.db.add(orm_user)
        self.db.commit()
        user = User(
            orm_user, settings={"config": c, "hub": Hub(), "spawner_class": self.backend.spawner_class}
        )
        spawner = user._new_spawner("", spawner_class=self.backend.spawner_class)
        orm_server = orm.Server(base_url=f"/user/{name}/")
        self.db.add(orm_server)
        self.db.commit()
        spawner.server = Server(orm_server=orm_server)
        self.spawners.append(spawner)
        return spawner

    def restarted(self, spawner: Any) -> Any:
        """The same learner's spawner as a restarted hub makes it: a new User around the same
        database rows, the spawner's state loaded from the database (JupyterHub's init_spawners)."""
        user = User(
            spawner.user.orm_user,
            settings={"config": spawner.config, "hub": Hub(), "spawner_class": self.backend.spawner_class},
        )
        again = user._new_spawner("", spawner_class=self.backend.spawner_class)
        self.spawners.append(again)
        return again


def docker_engine(base_image: str, suffix: str) -> Engine:
    settings: Settings = parse_settings(
        SETTINGS + f"image: {{name: {base_image.split(':')[0]}, tag: {base_image.split(':')[1]}}}\n"
        f"hub: {{container_name: dlw-iface-{suffix}, network: dlw-iface-{suffix}}}\n"
    )
    from hub.backends.docker import DockerBackend

    def prepare(c: Config) -> None:
        c.DockerSpawner.cmd = ["python3", "-c", SERVE]
        c.WorkshopDockerSpawner.disk_free_min = 0  # its path is the hub volume, inside a hub container

    def failing(c: Config) -> None:
        c.DockerSpawner.cmd = ["python3", "-c", "raise SystemExit(3)"]

    return Engine(DockerBackend(settings), failing, prepare)


# A learner "server" for the Slurm engine, run by the compute node's own python3: it answers every
# request and reports its port to the hub's API, as batchspawner-singleuser does.
SERVE_AND_REPORT = (
    "import http.server as h, json, os, threading, urllib.request as u\n"
    "class A(h.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        self.send_response(200); self.end_headers(); self.wfile.write(b'{}')\n"
    "s = h.ThreadingHTTPServer(('0.0.0.0', 0), A)\n"
    "body = json.dumps({'port': s.server_address[1], 'user': os.environ['JUPYTERHUB_USER']}).encode()\n"
    "u.urlopen(u.Request(os.environ['JUPYTERHUB_API_URL'] + '/batchspawner', body, method='POST'))\n"
    "s.serve_forever()\n"
)


class FakeHubApi:
    """The one hub API call a Slurm job makes while starting: POST its port (batchspawner's API
    handler sets it on the learner's spawner). Listens where the cluster's nodes reach this machine."""

    def __init__(self, engine: Engine, address: str) -> None:
        import http.server
        import json
        import threading

        spawners = engine.spawners

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                for spawner in spawners:
                    if spawner.user.name == body["user"]:
                        spawner.port = int(body["port"])
                self.send_response(201)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer((address, 0), Handler)
        self.url = f"http://{address}:{self.server.server_address[1]}/hub/api"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


def slurm_engine(cluster: Any, data: Path) -> tuple[Engine, FakeHubApi]:
    """The Slurm backend against the test cluster: sbatch, squeue and scancel run on the login node
    as the learner's account (docker exec standing in for sudo), jobs on the compute nodes."""
    import json as json_module

    from hub.backends.slurm import SlurmBackend
    from tests.fixtures.slurm import NETWORK, docker

    network = json_module.loads(docker("network", "inspect", NETWORK).stdout)[0]
    gateway = network["IPAM"]["Config"][0]["Gateway"]
    addresses = {
        node: json_module.loads(
            docker("inspect", "-f", "{{json .NetworkSettings.Networks}}", cluster.container(node)).stdout
        )[NETWORK]["IPAddress"]
        for node in cluster.compute_nodes
    }
    settings = parse_settings(
        SETTINGS + f"hub: {{backend: slurm}}\nslurm: {{partition: {cluster.partition}, "
        f"account: {cluster.account}, poll_interval: 5, accounts: {{count: 4}}}}\n"
    )
    backend = SlurmBackend(settings)
    login = cluster.container(cluster.login)
    backend.command_prefix = ["docker", "exec", login]
    for account in ("dlw-01", "dlw-02", "dlw-03", "dlw-04"):
        cluster.add_user(account)

    def prepare(c: Config) -> None:
        c.WorkshopSlurmSpawner.exec_prefix = (
            "/usr/bin/docker exec -i {% for name in keepvars.split(',') %}-e {{name}} {% endfor %}"
            f"--user {{{{username}}}} {login}"
        )
        c.WorkshopSlurmSpawner.home_template = "/home/{account}"
        c.WorkshopSlurmSpawner.accounts_file = str(data / contract.CLUSTER_ACCOUNTS_FILE)
        c.WorkshopSlurmSpawner.node_addresses = addresses
        c.WorkshopSlurmSpawner.server_wrapper = ["env"]
        c.WorkshopSlurmSpawner.startup_poll_interval = 0.5
        c.Spawner.cmd = ["python3", "-c", SERVE_AND_REPORT]
        c.Spawner.environment = {"JUPYTERHUB_API_URL": api.url}

    def failing(c: Config) -> None:
        c.Spawner.cmd = ["python3", "-c", "raise SystemExit(3)"]

    engine = Engine(backend, failing, prepare, adopts=False)
    api = FakeHubApi(engine, gateway)
    return engine, api


def in_process_engine() -> Engine:
    def failing(c: Config) -> None:
        c.InProcessSpawner.exit_code = 3

    return Engine(InProcessBackend(parse_settings(SETTINGS)), failing)


@pytest.fixture(params=["docker", "kubernetes", "in-process", "slurm"])
def backend_class(request: pytest.FixtureRequest) -> type[Backend]:
    if request.param == "docker":
        from hub.backends.docker import DockerBackend

        return DockerBackend
    if request.param == "kubernetes":
        from hub.backends.kubernetes import KubernetesBackend

        return KubernetesBackend
    if request.param == "slurm":
        from hub.backends.slurm import SlurmBackend

        return SlurmBackend
    return InProcessBackend


@pytest.fixture(
    params=[
        pytest.param("docker", marks=pytest.mark.docker),
        "in-process",
        pytest.param("slurm", marks=[pytest.mark.slurm, pytest.mark.docker]),
    ]
)
def engine(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Engine]:
    monkeypatch.setattr(WorkshopSpawner, "_admission", None)  # a fresh queue for the hub of each test
    if request.param == "in-process":
        yield in_process_engine()
        InProcessSpawner.engine.clear()  # its servers ended with the test's event loop
        return
    if request.param == "slurm":
        cluster = request.getfixturevalue("slurm_cluster")
        monkeypatch.setenv(contract.HUB_HOME_ENV, str(tmp_path))
        under_test, api = slurm_engine(cluster, tmp_path / "data")
        try:
            yield under_test
        finally:
            api.close()
            cluster.cancel_all_and_wait()
        return
    client = request.getfixturevalue("docker_client")
    base_image = request.getfixturevalue("base_image")
    suffix = uuid.uuid4().hex[:6]
    under_test = docker_engine(base_image, suffix)
    network = client.networks.create(f"dlw-iface-{suffix}", driver="bridge")
    try:
        yield under_test
    finally:
        import docker

        for container in client.containers.list(
            # A learner container may go (auto-remove) between the listing and its inspection.
            all=True,
            filters={"label": f"{contract.LABEL_HUB}=dlw-iface-{suffix}"},
            ignore_removed=True,
        ):
            with contextlib.suppress(docker.errors.APIError):  # a stop may be removing it already
                container.remove(force=True)
        network.remove()
        for volume in client.volumes.list():
            if volume.name.startswith(contract.work_volume_prefix(f"dlw-iface-{suffix}")):
                volume.remove(force=True)


def test_configure_hands_jupyterhub_a_workshop_spawner_with_the_quotas(backend_class: type[Backend]) -> None:
    backend = "kubernetes" if backend_class.name == "kubernetes" else "docker"
    settings = parse_settings(SETTINGS + f"hub: {{backend: {backend}, start_timeout: 90}}\n")
    c = Config()
    backend_class(settings).configure(c)
    spawner_class = c.JupyterHub.spawner_class
    assert issubclass(spawner_class, WorkshopSpawner) and issubclass(spawner_class, Spawner)
    engine = Engine(backend_class(settings), failing=lambda c: None)

    async def made() -> Any:  # in a running loop, as in the hub (KubeSpawner's client needs one)
        return engine.spawner(c, "ada")

    if backend == "kubernetes":
        from dlworkshop.kubernetes.manifests import offline_kubeconfig

        with offline_kubeconfig():  # KubeSpawner loads a kubeconfig when made; this one reaches nothing
            spawner = asyncio.run(made())
    else:
        spawner = asyncio.run(made())
    assert spawner.cpu_limit == 0.5 and spawner.mem_limit == 512 * 2**20
    assert spawner.admitted_start_timeout == 90 and spawner.start_timeout >= 24 * 3600
    assert spawner.notebook_dir == contract.learner.WORK_FOLDER
    assert spawner.default_url == "/lab"
    assert c.JupyterHub.concurrent_spawn_limit == 0


async def _until(condition: Callable[[], bool], timeout: float = 60) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.05)


async def _answers(spawner: Any, started: Any) -> int:
    """What the learner's server says at its API, asked as the hub asks (while the engine runs)."""
    url = started if isinstance(started, str) else f"http://{started[0]}:{started[1]}"
    async with httpx.AsyncClient(timeout=10) as client:
        return (await client.get(f"{url.rstrip('/')}{spawner.server.base_url}api")).status_code


def _running(engine: Engine) -> set[str]:
    return {server.user for server in engine.backend.learner_servers() if server.state == "running"}


def test_starts_wait_their_turn_and_end_with_servers_that_answer(engine: Engine) -> None:
    c = engine.config(capacity=1)
    ada, bo = engine.spawner(c, "ada"), engine.spawner(c, "bo")

    async def scenario() -> None:
        first = asyncio.create_task(ada.start())
        await _until(lambda: ada.phase in ("starting", "answering"))
        second = asyncio.create_task(bo.start())
        await _until(lambda: bo.phase == "queued" and bo.admission.place(bo.admission_key) == 1)
        queued = bo._progress_event()
        assert queued is not None and "you are number 1 in the queue" in queued["message"]
        for spawner, started in ((ada, await first), (bo, await second)):
            assert await _answers(spawner, started) == 200
            assert await spawner.poll() is None
        assert {"ada", "bo"} <= _running(engine)
        await ada.stop()
        await bo.stop()

    asyncio.run(scenario())


def test_a_stopped_server_is_gone_from_the_engine(engine: Engine) -> None:
    ada = engine.spawner(engine.config(), "ada")

    async def scenario() -> None:
        await ada.start()
        assert "ada" in _running(engine)
        await ada.stop()
        assert await ada.poll() is not None
        assert "ada" not in _running(engine)

    asyncio.run(scenario())


def test_a_server_that_dies_while_starting_fails_and_frees_its_place(engine: Engine) -> None:
    dying = engine.spawner(engine.config(capacity=1, failing=True), "dies")
    healthy = engine.spawner(engine.config(capacity=1), "lives")

    async def scenario() -> None:
        with pytest.raises(RuntimeError, match="exited while starting"):
            await dying.start()
        assert dying.admission.starting == set()
        assert await _answers(healthy, await healthy.start()) == 200
        await healthy.stop()
        await dying.stop()

    asyncio.run(scenario())


def test_a_running_servers_usage_is_said_against_its_quota(engine: Engine) -> None:
    """What the room view asks the engine (`learner_usage`): every live server, with its quotas;
    the figures in use where the engine measures them (None where it cannot read them)."""
    ada = engine.spawner(engine.config(), "ada")

    async def scenario() -> None:
        await ada.start()
        try:
            usage = engine.backend.learner_usage(engine.backend.learner_servers())["ada"]
            assert usage.cpu_limit == 0.5 and usage.memory_limit == 512 * 2**20
            assert usage.cpu_used is None or usage.cpu_used >= 0
            assert usage.memory_used is None or 0 < usage.memory_used <= 512 * 2**20
        finally:
            await ada.stop()
        assert "ada" not in engine.backend.learner_usage(engine.backend.learner_servers())

    asyncio.run(scenario())


def _restart_the_hub(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A new hub process: a new admission queue; the starts it asks for again are recorded
    (the real hub asks its own API, tested in tests/hub/test_faults.py)."""
    asked: list[str] = []

    async def ask_again(spawner: WorkshopSpawner) -> None:
        asked.append(spawner.user.name)

    monkeypatch.setattr(WorkshopSpawner, "_admission", None)
    monkeypatch.setattr(WorkshopSpawner, "_ask_again", ask_again)
    return asked


def test_starts_a_restart_interrupted_while_queued_are_asked_again_in_their_place(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = engine.config(capacity=1)
    ada, bo = engine.spawner(c, "ada"), engine.spawner(c, "bo")

    async def before_the_restart() -> None:
        async with ada.admission.admitted("someone-else/"):  # the one place, taken
            starts = [asyncio.create_task(ada.start())]
            await _until(lambda: ada.phase == "queued")
            starts.append(asyncio.create_task(bo.start()))
            await _until(lambda: bo.admission.place(bo.admission_key) == 2)
            # In the database: both starts in flight, ada's asked for first.
            assert START_STATE_KEY in ada.orm_spawner.state and START_STATE_KEY in bo.orm_spawner.state
            for start in starts:  # the hub process ends (its database stays)
                start.cancel()
            await asyncio.gather(*starts, return_exceptions=True)

    asyncio.run(before_the_restart())
    asked = _restart_the_hub(monkeypatch)
    ada_again, bo_again = engine.restarted(ada), engine.restarted(bo)
    newcomer = engine.spawner(c, "cy")

    async def after_the_restart() -> None:
        # JupyterHub's check of the servers in its database (bo's first): neither runs; their
        # places are kept in the order they asked, and each is asked for again.
        for spawner in (bo_again, ada_again):
            assert await spawner.poll() is not None
            await spawner.stop()  # what JupyterHub's check does with a server that is not running
        await asyncio.sleep(0.1)  # the spawners ask again in the background
        assert sorted(asked) == ["ada", "bo"]
        # A learner who arrives after the restart, then the starts asked again (bo's first).
        starts = {"cy": asyncio.create_task(newcomer.start())}
        await _until(lambda: newcomer.phase == "queued")
        starts["bo"] = asyncio.create_task(bo_again.start())
        starts["ada"] = asyncio.create_task(ada_again.start())
        queue = newcomer.admission
        await _until(lambda: queue.place(ada_again.admission_key) == 0)
        assert [queue.place(s.admission_key) for s in (bo_again, newcomer)] == [1, 2]
        await _until(lambda: bo_again.phase == "queued")
        shown = bo_again._progress_event()
        assert shown is not None and "The hub restarted and kept your place" in shown["message"]
        for name, start in starts.items():
            assert await start, name
        for spawner in (ada_again, bo_again, newcomer):
            assert await spawner.poll() is None
            assert START_STATE_KEY not in spawner.get_state()
            await spawner.stop()

    asyncio.run(after_the_restart())


def test_a_server_started_before_the_restart_is_adopted_or_started_again(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server the engine runs when the hub restarts, its start not yet registered: adopted where
    the engine says where it listens and it answers; otherwise stopped and asked for again, its
    place in the queue kept."""
    ada = engine.spawner(engine.config(), "ada")

    # One event loop throughout: the in-process engine's servers live in it (Docker's outlive it).
    async def scenario() -> None:
        start = asyncio.create_task(ada.start())
        # The engine runs it; the hub ends before JupyterHub registers it as started.
        await _until(lambda: "ada" in _running(engine))
        start.cancel()
        await asyncio.gather(start, return_exceptions=True)
        assert START_STATE_KEY in ada.orm_spawner.state

        asked = _restart_the_hub(monkeypatch)
        again = engine.restarted(ada)
        if not engine.adopts:
            assert await again.poll() is not None  # JupyterHub cleans up what is left of it
            await _until(lambda: "ada" not in _running(engine))
            await _until(lambda: asked == ["ada"])
            assert again.admission.requested(again.admission_key) is not None
            return
        assert await again.poll() is None  # running and answering: JupyterHub keeps it
        url = await again.get_url()
        assert url != again.server.url  # the engine's address, not the database's placeholder
        async with httpx.AsyncClient(timeout=10) as client:
            assert (await client.get(f"{url}api")).status_code == 200
        assert START_STATE_KEY not in again.orm_spawner.state  # registered as started
        assert asked == []
        await again.stop()

    asyncio.run(scenario())
