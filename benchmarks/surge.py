"""Benchmark: login to first cell for 1, 10 and 30 learners arriving within 10 s, on the hub
`dlworkshop up` starts, side by side with a hub set up the way jupyterhub-deploy-docker does it
(plain DockerSpawner, no limits or tuning) on the same machine and learner image.

    python benchmarks/surge.py [--image dlworkshop/learner:test] [--hub-image dlworkshop/hub:test] [--sizes 1 10 30]

Not a test: it prints its numbers (a table, and the ratio) and writes benchmarks/results/surge.json + .png.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

import docker
import httpx
from rich.console import Console
from rich.table import Table

from dlworkshop import hub_service, loadtest
from dlworkshop.settings import parse_settings

CODE = "benchmark-code"
PLAIN = {"name": "dlworkshop-bench-plain", "network": "dlworkshop-bench-plain", "port": 8332}
OURS = """
workshop: {{name: surge benchmark}}
learners: {{count: 30}}
auth: {{mode: shared-code, access_code: {code}}}
image: {{name: {name}, tag: {tag}}}
resources: {{cpu: 1, memory: 2G}}
hub: {{image: {hub_image}, port: 8331, container_name: dlworkshop-bench-ours, network: dlworkshop-bench-ours, data_volume: dlworkshop-bench-ours-data}}
"""
# jupyterhub-deploy-docker's configuration, with DummyAuthenticator standing in for its NativeAuthenticator.
PLAIN_CONFIG = """
c = get_config()
c.JupyterHub.spawner_class = "dockerspawner.DockerSpawner"
c.DockerSpawner.image = "{image}"
c.DockerSpawner.network_name = "{network}"
c.DockerSpawner.notebook_dir = "/home/jovyan/work"
c.DockerSpawner.volumes = {{"jupyterhub-user-{{username}}": "/home/jovyan/work"}}
c.DockerSpawner.remove = True
c.JupyterHub.hub_ip = "0.0.0.0"
c.JupyterHub.hub_connect_ip = "{name}"
c.JupyterHub.db_url = "sqlite:////tmp/jupyterhub.sqlite"
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = "{code}"
c.Authenticator.allow_all = True
"""


def start_plain_hub(client: docker.DockerClient, image: str, hub_image: str, folder: Path) -> str:
    config = folder / "plain_config.py"
    config.write_text(
        PLAIN_CONFIG.format(image=image, network=PLAIN["network"], name=PLAIN["name"], code=CODE)
    )
    client.networks.create(PLAIN["network"], driver="bridge")
    client.containers.run(
        hub_image,
        ["jupyterhub", "-f", "/srv/plain_config.py"],
        name=PLAIN["name"],
        detach=True,
        network=PLAIN["network"],
        ports={"8000/tcp": ("127.0.0.1", PLAIN["port"])},
        volumes={
            "/var/run/docker.sock": {"bind": "/var/run/docker.sock", "mode": "rw"},
            str(config): {"bind": "/srv/plain_config.py", "mode": "ro"},
        },
    )
    url = f"http://127.0.0.1:{PLAIN['port']}"
    for _ in range(120):
        try:
            if httpx.get(f"{url}/hub/api", timeout=2).status_code == 200:
                return url
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise RuntimeError("the plain hub did not start")


def stop_plain_hub(client: docker.DockerClient) -> None:
    for container in client.containers.list(all=True):
        if container.name == PLAIN["name"] or container.name.startswith("jupyter-bench"):
            container.remove(force=True)
    for network in client.networks.list(names=[PLAIN["network"]]):
        network.remove()
    for volume in client.volumes.list():
        if volume.name.startswith("jupyterhub-user-bench"):
            volume.remove(force=True)


def measure(url: str, learners: int, ramp: float) -> dict[str, float]:
    logins = loadtest.credentials(learners, f"bench{learners}-", CODE, None)
    runs = asyncio.run(loadtest.surge(url, logins, ramp, loadtest.DEFAULT_CODE, timeout=600))
    ready = [r.ready for r in runs if r.ok]
    return {
        "ran_code": len(ready),
        "learners": learners,
        "p50": loadtest.percentile(ready, 50) if ready else float("nan"),
        "p95": loadtest.percentile(ready, 95) if ready else float("nan"),
        "errors": sorted({r.error for r in runs if r.error}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default="dlworkshop/learner:test")
    parser.add_argument("--hub-image", default="dlworkshop/hub:test")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 30])
    parser.add_argument("--ramp", type=float, default=10.0)
    args = parser.parse_args()
    console = Console()
    client = docker.from_env()
    name, tag = args.image.rsplit(":", 1)
    settings = parse_settings(OURS.format(code=CODE, name=name, tag=tag, hub_image=args.hub_image))
    results: dict[str, dict[int, dict[str, float]]] = {"dlworkshop up": {}, "plain DockerSpawner": {}}
    with tempfile.TemporaryDirectory() as scratch:
        try:
            ours = "http://127.0.0.1:8331"
            hub_service.up(
                settings, None, OURS.format(code=CODE, name=name, tag=tag, hub_image=args.hub_image), console
            )
            plain = start_plain_hub(client, args.image, args.hub_image, Path(scratch))
            for size in args.sizes:
                for label, url in (("dlworkshop up", ours), ("plain DockerSpawner", plain)):
                    with console.status(f"{label}: {size} learners arriving within {args.ramp:g} s"):
                        results[label][size] = measure(url, size, args.ramp if size > 1 else 0)
                    console.print(f"{label}, {size} learners: {results[label][size]}")
        finally:
            hub_service.down(settings, purge=True, console=console)
            stop_plain_hub(client)
    table = Table("learners", "hub", "ran code", "p50 login to first cell", "p95", title="Workshop-day surge")
    for size in args.sizes:
        for label in results:
            row = results[label][size]
            table.add_row(
                str(size), label, f"{row['ran_code']}/{size}", f"{row['p50']:.1f} s", f"{row['p95']:.1f} s"
            )
        ratio = results["plain DockerSpawner"][size]["p95"] / results["dlworkshop up"][size]["p95"]
        table.add_row("", "ratio plain / ours (p95)", "", "", f"{ratio:.2f}x")
    console.print(table)
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "surge.json").write_text(json.dumps(results, indent=2))
    console.print(f"wrote {out / 'surge.json'}")


if __name__ == "__main__":
    main()
