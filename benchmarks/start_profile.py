"""Benchmark: where a learner server's start goes, phase by phase, in wall and CPU seconds.

    python benchmarks/start_profile.py [--image dlworkshop/learner:test] [--cpus 1] [--repeat 3]

Phases: container create+start, Jupyter server answering, kernel started, first cell's output.
CPU seconds are read from the container's cgroup, so they count every process in it. Prints a table;
not a test.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import docker
import httpx
from rich.console import Console
from rich.table import Table

from dlworkshop.smoke.jupyter import JupyterServer, run_code

TOKEN = "start-profile"


def cpu_seconds(container) -> float:  # type: ignore[no-untyped-def]
    """Total CPU of the container so far, from cgroup v1 (cpuacct) or v2 (cpu.stat)."""
    for path in (
        Path(f"/sys/fs/cgroup/cpuacct/docker/{container.id}/cpuacct.usage"),
        Path(f"/sys/fs/cgroup/cpu,cpuacct/docker/{container.id}/cpuacct.usage"),
    ):
        if path.exists():
            return int(path.read_text()) / 1e9
    stat = Path(f"/sys/fs/cgroup/system.slice/docker-{container.id}.scope/cpu.stat")
    for line in stat.read_text().splitlines():
        if line.startswith("usage_usec"):
            return int(line.split()[1]) / 1e6
    raise RuntimeError("no cgroup CPU accounting found")


def profile_once(
    client: docker.DockerClient, image: str, cpus: float, env: dict[str, str]
) -> dict[str, tuple[float, float]]:
    phases: dict[str, tuple[float, float]] = {}
    began = time.monotonic()
    container = client.containers.run(
        image,
        [
            "jupyter",
            "server",
            "--ServerApp.ip=0.0.0.0",
            f"--ServerApp.token={TOKEN}",
            "--ServerApp.port=8888",
        ],
        detach=True,
        nano_cpus=int(cpus * 1e9),
        ports={"8888/tcp": ("127.0.0.1", None)},
        environment=env,
    )
    try:
        container.reload()
        phases["container started"] = (time.monotonic() - began, cpu_seconds(container))
        port = container.attrs["NetworkSettings"]["Ports"]["8888/tcp"][0]["HostPort"]
        server = JupyterServer(f"http://127.0.0.1:{port}/", TOKEN)
        while True:
            try:
                if httpx.get(server.base_url + "api", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.02)
        phases["server answering"] = (time.monotonic() - began, cpu_seconds(container))
        kernel = server.request("POST", "api/kernels", json={"name": "python3"}).json()["id"]
        phases["kernel requested"] = (time.monotonic() - began, cpu_seconds(container))
        run_code(server, kernel, "import numpy\nprint(int(numpy.arange(7).sum()))", timeout=120)
        phases["first cell output"] = (time.monotonic() - began, cpu_seconds(container))
    finally:
        container.remove(force=True)
    return phases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", action="append", help="image to profile (repeatable)")
    parser.add_argument("--cpus", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    images = args.image or ["dlworkshop/learner:test"]
    client = docker.from_env()
    console = Console()
    table = Table(
        "image",
        "phase",
        "wall s (median, cumulative)",
        "CPU s (median, cumulative)",
        title=f"Learner server start at --cpus {args.cpus:g}",
    )
    for image in images:
        runs = []
        with console.status(f"profiling {image}"):
            profile_once(client, image, args.cpus, {})  # page cache warm
            for _ in range(args.repeat):
                runs.append(profile_once(client, image, args.cpus, {}))
        for phase in runs[0]:
            table.add_row(
                image,
                phase,
                f"{statistics.median(r[phase][0] for r in runs):.2f}",
                f"{statistics.median(r[phase][1] for r in runs):.2f}",
            )
    console.print(table)


if __name__ == "__main__":
    main()
