"""Pieces of a learner's arrival measured alone, in CPU seconds (what load inflates least): the
single-user server's start as JupyterHub runs it, with each configuration the learner image could
ship, what its imports weigh, and the login's claim check. Used by benchmarks/start_profile.py
(its results file and README block); not a test.

The server is `jupyterhub-singleuser` in a fresh container of the image, started the way a hub's
spawner starts it (the JUPYTERHUB_* variables), against a stand-in for the hub's API in the
probe's own process; its CPU (user + system, the server process and the children it waited for) is
read from /proc when it first answers its API, before its kernel ahead starts.
"""

from __future__ import annotations

import json
import statistics
import time
from typing import Any

import docker

from dlworkshop.accounts import hash_password, pbkdf2_hash, verify_password

# Runs in the container: a stand-in hub API in a thread, the server as a child, CPU when it answers.
PROBE = r"""
import http.server, json, os, subprocess, sys, threading, time, urllib.request

class Hub(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-JupyterHub-Version", os.environ["HUB_VERSION"])
        self.end_headers()
        self.wfile.write(json.dumps({"version": os.environ["HUB_VERSION"]}).encode())
    def log_message(self, *args):
        pass

threading.Thread(target=http.server.ThreadingHTTPServer(("127.0.0.1", 8081), Hub).serve_forever, daemon=True).start()
began = time.monotonic()
server = subprocess.Popen(["jupyterhub-singleuser", *sys.argv[1:]], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
while True:
    try:
        if urllib.request.urlopen("http://127.0.0.1:8888/user/probe/api", timeout=2).status == 200:
            break
    except Exception:
        time.sleep(0.02)
wall = time.monotonic() - began
fields = open(f"/proc/{server.pid}/stat").read().rsplit(")", 1)[1].split()
cpu = sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")  # utime stime cutime cstime
server.kill()
print(json.dumps({"cpu_s": cpu, "wall_s": wall}))
"""
ENVIRONMENT = {
    "JUPYTERHUB_API_URL": "http://127.0.0.1:8081/hub/api",
    "JUPYTERHUB_API_TOKEN": "probe",
    "JUPYTERHUB_USER": "probe",
    "JUPYTERHUB_CLIENT_ID": "jupyterhub-user-probe",
    "JUPYTERHUB_BASE_URL": "/",
    "JUPYTERHUB_SERVICE_PREFIX": "/user/probe/",
    "JUPYTERHUB_SERVICE_URL": "http://0.0.0.0:8888/user/probe/",
}
# What the image's server would be started with besides its own config (the same image measured
# each way, so a configuration's saving is measured before it ships).
SERVER_VARIANTS = {
    "as the image ships it": [],
    "extension manager with PyPI client (LabApp.extension_manager=pypi)": ["--LabApp.extension_manager=pypi"],
    "read-only extension manager (LabApp.extension_manager=readonly)": [
        "--LabApp.extension_manager=readonly"
    ],
}
# Imports alone, CPU of a fresh interpreter (the hub's database layer: what JupyterHub's single-user
# extension pulls in through jupyterhub.log -> jupyterhub.handlers -> jupyterhub.orm).
IMPORTS = {
    "python alone": "pass",
    "jupyterhub.singleuser (all of it)": "import jupyterhub.singleuser",
    "jupyterhub.orm (SQLAlchemy, Alembic: the hub's database layer)": "import jupyterhub.orm",
    "jupyterlab.extensions.pypi (the extension manager's PyPI client)": "import jupyterlab.extensions.pypi",
}
# The extension manager's set-up at a server start, once JupyterLab's server extension is
# imported (jupyterlab.extensions imports both managers' modules whichever is chosen, so what the
# setting saves is the PyPI manager's construction): its CPU alone, in the process (the whole
# start's CPU varies by more than this on a shared machine).
MANAGER_SETUP = (
    "import time; from jupyterlab.commands import AppOptions; "
    "from jupyterlab.extensions import get_{manager}_manager as manager; options = AppOptions(); "
    "began = time.process_time(); manager(options, {{}}, None); print(time.process_time() - began)"
)
MANAGERS = {"pypi": "with the PyPI client (JupyterLab's default)", "readonly": "read-only"}
RUSAGE = (
    "import resource, subprocess, sys; subprocess.run([sys.executable, '-c', sys.argv[1]], check=True); "
    "r = resource.getrusage(resource.RUSAGE_CHILDREN); print(r.ru_utime + r.ru_stime)"
)


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 3)


def hub_version(client: docker.DockerClient, image: str) -> str:
    """The image's JupyterHub version (the stand-in hub answers with it, as the real hub would)."""
    output = client.containers.run(
        image,
        ["-c", "import jupyterhub; print(jupyterhub.__version__)"],
        entrypoint=["python"],
        remove=True,
        network_mode="none",
    )
    return str(output.decode().strip())


def server_start(
    client: docker.DockerClient, image: str, cpus: float, args: list[str], version: str
) -> dict[str, float]:
    """One start of jupyterhub-singleuser in a fresh container: CPU and wall seconds until it answers."""
    output = client.containers.run(
        image,
        ["-c", PROBE, *args],
        entrypoint=["python"],  # the server alone: the start hook's cost is the profile's own row
        environment={**ENVIRONMENT, "HUB_VERSION": version},
        remove=True,
        nano_cpus=int(cpus * 1e9),
        network_mode="none",
    )
    result: dict[str, float] = json.loads(output.decode().strip().splitlines()[-1])
    return result


def rotated(items: list[str], turn: int) -> list[str]:
    """`items` starting at `turn` (mod their count): each goes first, second... in turn."""
    shift = turn % len(items)
    return items[shift:] + items[:shift]


def server_starts(client: docker.DockerClient, image: str, cpus: float, repeat: int) -> dict[str, Any]:
    """Each variant `repeat` times, taking turns, the order rotating every round (no variant always
    runs first or last); the first start, discarded, warms the page cache."""
    version = hub_version(client, image)
    server_start(client, image, cpus, [], version)
    samples: dict[str, list[dict[str, float]]] = {variant: [] for variant in SERVER_VARIANTS}
    for turn in range(repeat):
        for variant in rotated(list(SERVER_VARIANTS), turn):
            samples[variant].append(server_start(client, image, cpus, SERVER_VARIANTS[variant], version))
    return {
        variant: {
            "cpu_s": _median([s["cpu_s"] for s in runs]),
            "wall_s": _median([s["wall_s"] for s in runs]),
            "cpu_s_each": [round(s["cpu_s"], 3) for s in runs],
        }
        for variant, runs in samples.items()
    }


def import_costs(client: docker.DockerClient, image: str, repeat: int) -> dict[str, float]:
    """CPU seconds of each import in a fresh interpreter (median of `repeat`)."""
    costs = {}
    for label, code in IMPORTS.items():
        runs = [
            float(
                client.containers.run(
                    image, ["-c", RUSAGE, code], entrypoint=["python"], remove=True, network_mode="none"
                )
                .decode()
                .split()[-1]
            )
            for _ in range(repeat)
        ]
        costs[label] = _median(runs)
    return costs


def manager_setup_cpu(client: docker.DockerClient, image: str, repeat: int) -> dict[str, float]:
    """CPU seconds of each extension manager's set-up in a fresh process, JupyterLab's server
    extension imported (median of `repeat`, the two taking turns)."""
    runs: dict[str, list[float]] = {manager: [] for manager in MANAGERS}
    for turn in range(repeat):
        for manager in rotated(list(MANAGERS), turn):
            output = client.containers.run(
                image,
                ["-c", MANAGER_SETUP.format(manager=manager)],
                entrypoint=["python"],
                remove=True,
                network_mode="none",
            )
            runs[manager].append(float(output.decode().split()[-1]))
    return {
        f"{manager}: {label}": round(statistics.median(runs[manager]), 4)
        for manager, label in MANAGERS.items()
    }


def claim_check_cpu(repeat: int = 20) -> dict[str, float]:
    """CPU seconds of one login's claim check (verify_password), with the hash written before and now
    (measured here, in the benchmark's process: the hub runs the same code on the same cores)."""
    secret = "1234"
    hashes = {"PBKDF2-SHA256, 200,000 iterations (before)": pbkdf2_hash(secret)}
    hashes["scrypt N=2^12 r=8 p=1 (now)"] = hash_password(secret)
    costs = {}
    for label, stored in hashes.items():
        runs = []
        for _ in range(repeat):
            began = time.process_time()
            assert verify_password(stored, secret)
            runs.append(time.process_time() - began)
        costs[label] = round(statistics.median(runs), 4)
    return costs
