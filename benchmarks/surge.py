"""Benchmark: login to first cell for 1, 10 and 30 learners arriving within 10 s, on the hub
`dlworkshop up` starts, side by side with a hub set up the way jupyterhub-deploy-docker does it
(plain DockerSpawner, no limits or tuning) on the same machine and learner image.

    python benchmarks/surge.py [--image dlworkshop/learner:test] [--hub-image dlworkshop/hub:test] [--skip-plain]

Scenarios: 1 learner; 10 and 30 arriving within 10 s on cold hubs; 30 again after `dlworkshop prewarm`
(ours only: the plain hub has nothing like it). Not a test: it prints a table and writes
benchmarks/results/surge.json and surge.png.
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

from dlworkshop import instructor, loadtest, local_hub
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


def measure(url: str, learners: int, ramp: float, prefix: str, tries: int = 1) -> dict[str, float]:
    """`tries` surges one after the other (a single learner is measured several times)."""
    runs = []
    for attempt in range(tries):
        # Our hub's names are claimed with a secret; the plain hub's DummyAuthenticator ignores it.
        logins = loadtest.credentials(learners, f"{prefix}{attempt}-", CODE, None, instructor.secret_for)
        runs += asyncio.run(loadtest.surge(url, logins, ramp, loadtest.DEFAULT_CODE, timeout=600))
    ready = [r.ready for r in runs if r.ok]
    return {
        "ran_code": len(ready),
        "learners": len(runs),
        "p50": loadtest.percentile(ready, 50) if ready else float("nan"),
        "p95": loadtest.percentile(ready, 95) if ready else float("nan"),
        "errors": sorted({r.error for r in runs if r.error}),
    }


# (label, learners, pre-warmed, tries): arriving within --ramp seconds (a single learner at once).
SCENARIOS = [
    ("1 learner (5 tries)", 1, False, 5),
    ("10 learners", 10, False, 1),
    ("30 learners, cold", 30, False, 1),
    ("30 learners, pre-warmed", 30, True, 1),
]


def plot(results: dict[str, dict[str, dict]], path: Path) -> None:  # type: ignore[type-arg]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [label for label, *_ in SCENARIOS]
    figure, axis = plt.subplots(figsize=(9, 4.5))
    width = 0.38
    for offset, hub in ((-width / 2, "dlworkshop up"), (width / 2, "plain DockerSpawner")):
        rows = [results[hub].get(label) for label in labels]
        p95 = [row["p95"] if row else 0 for row in rows]
        bars = axis.bar([i + offset for i in range(len(labels))], p95, width, label=hub)
        for bar, row in zip(bars, rows, strict=True):
            if row:
                axis.annotate(
                    f"{row['ran_code']}/{row['learners']}",
                    (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center",
                    va="bottom",
                    fontsize=8,
                )
    axis.axhline(60, color="grey", linestyle="--", linewidth=1)
    axis.text(len(labels) - 0.5, 61, "cold target 60 s", ha="right", fontsize=8, color="grey")
    axis.set_xticks(range(len(labels)), labels)
    axis.set_ylabel("p95 login to first cell (s)")
    axis.set_title("Workshop-day surge on 2 cores (label: learners who ran code)")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default="dlworkshop/learner:test")
    parser.add_argument("--hub-image", default="dlworkshop/hub:test")
    parser.add_argument("--ramp", type=float, default=10.0)
    parser.add_argument("--settle", type=float, default=60, help="Seconds between pre-warm and arrivals.")
    parser.add_argument("--skip-plain", action="store_true", help="Measure dlworkshop up only.")
    args = parser.parse_args()
    console = Console()
    client = docker.from_env()
    name, tag = args.image.rsplit(":", 1)
    text = OURS.format(code=CODE, name=name, tag=tag, hub_image=args.hub_image)
    settings = parse_settings(text)
    results: dict[str, dict[str, dict]] = {"dlworkshop up": {}, "plain DockerSpawner": {}}  # type: ignore[type-arg]
    with tempfile.TemporaryDirectory() as scratch:
        try:
            ours = "http://127.0.0.1:8331"
            stop_plain_hub(client)  # leftovers of an interrupted run
            local_hub.down(settings, purge=True, console=console, force=True)
            local_hub.up(settings, console)
            plain = (
                None
                if args.skip_plain
                else start_plain_hub(client, args.image, args.hub_image, Path(scratch))
            )
            for index, (label, size, prewarmed, tries) in enumerate(SCENARIOS):
                hubs = [("dlworkshop up", ours)] + (
                    [] if prewarmed or plain is None else [("plain DockerSpawner", plain)]
                )
                for hub, url in hubs:
                    if prewarmed:
                        local_hub.prewarm(settings, console)
                        # On the day the hub pre-warms 20 minutes ahead: let the servers' kernels
                        # started ahead finish before the room arrives.
                        with console.status(f"letting the pre-warmed servers settle for {args.settle:g} s"):
                            time.sleep(args.settle)
                    with console.status(f"{hub}: {label}"):
                        row = measure(url, size, args.ramp if size > 1 else 0, f"bench{index}-", tries)
                    results[hub][label] = row
                    console.print(f"{hub}, {label}: {row}")
        finally:
            local_hub.down(settings, purge=True, console=console, force=True)
            stop_plain_hub(client)
    table = Table(
        f"learners (within {args.ramp:g} s)",
        "hub",
        "ran code",
        "p50 login to first cell",
        "p95",
        title="Workshop-day surge",
    )
    for label, *_ in SCENARIOS:
        for hub in results:
            row = results[hub].get(label)
            if row is None:
                table.add_row(label, hub, "n/a", "", "")
                continue
            table.add_row(
                label,
                hub,
                f"{row['ran_code']}/{row['learners']}",
                f"{row['p50']:.1f} s",
                f"{row['p95']:.1f} s",
            )
    console.print(table)
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "surge.json").write_text(json.dumps(results, indent=2))
    plot(results, out / "surge.png")
    console.print(f"wrote {out / 'surge.json'} and {out / 'surge.png'}")


if __name__ == "__main__":
    main()
