"""Benchmark: our learner image against one built the upstream lesson's way, on the same base.

Prints, side by side: image size, cold start until the Jupyter server answers, and the TensorFlow
thread pools under --cpus 0.5, 1 and 2. Not a test: numbers depend on the machine.

    python benchmarks/image_bench.py [--ours dlworkshop/learner:test] [--base dlworkshop/base:bookworm]
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from dlworkshop.image.build import run_build
from dlworkshop.image.docker import require_engine

NAIVE_DOCKERFILE = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN --mount=type=secret,id=ca_bundle python3 -m venv /opt/venv \\
    && if [ -s /run/secrets/ca_bundle ]; then export PIP_CERT=/run/secrets/ca_bundle; fi \\
    && /opt/venv/bin/pip install --no-cache-dir jupyter seaborn scikit-learn pandas tensorflow pydot
ENV PATH=/opt/venv/bin:$PATH
"""
THREADS = "import tensorflow as tf; print(tf.config.threading.get_intra_op_parallelism_threads(), tf.config.threading.get_inter_op_parallelism_threads())"


def build_naive(client: str, base: str, tag: str, ca_bundle: Path, console: Console) -> None:
    with tempfile.TemporaryDirectory() as context:
        (Path(context) / "Dockerfile").write_text(NAIVE_DOCKERFILE)
        command = [client, "build", "--progress", "plain", "--build-arg", f"BASE_IMAGE={base}", "-t", tag]
        if ca_bundle.is_file():
            command += ["--secret", f"id=ca_bundle,src={ca_bundle}"]
        run_build([*command, context], console, f"building the naive image {tag}")


def size_gb(client: str, image: str) -> float:
    out = subprocess.run(
        [client, "image", "inspect", "--format", "{{.Size}}", image], capture_output=True, text=True
    )
    return int(out.stdout) / 1e9


def cold_start_seconds(client: str, image: str) -> float:
    """From `docker run` to the Jupyter server's API answering."""
    started = time.monotonic()
    container = subprocess.run(
        [
            client,
            "run",
            "-d",
            "--rm",
            "-p",
            "127.0.0.1::8888",
            image,
            "jupyter",
            "server",
            "--ip=0.0.0.0",
            "--port=8888",
            "--ServerApp.token=bench",
            "--no-browser",
            "--allow-root",  # the naive image runs as root
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    try:
        port = (
            subprocess.run([client, "port", container, "8888"], capture_output=True, text=True)
            .stdout.split(":")[-1]
            .strip()
        )
        while time.monotonic() - started < 120:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api", timeout=2).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        return float("nan")
    finally:
        subprocess.run([client, "rm", "-f", container], capture_output=True)


def thread_pools(client: str, image: str, cpus: str) -> str:
    out = subprocess.run(
        [client, "run", "--rm", "--network", "none", "--cpus", cpus, image, "python", "-c", THREADS],
        capture_output=True,
        text=True,
    ).stdout.split()
    intra, inter = out[-2:] if len(out) >= 2 else ["?", "?"]
    shown = lambda n: f"{n} (all host cores)" if n == "0" else n  # noqa: E731
    return f"{shown(intra)} / {shown(inter)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ours", default="dlworkshop/learner:test")
    parser.add_argument("--naive", default="dlworkshop/naive-learner:bench")
    parser.add_argument("--base", default="dlworkshop/base:bookworm")
    parser.add_argument("--ca-bundle", type=Path, default=Path("/etc/ssl/certs/ca-certificates.crt"))
    args = parser.parse_args()
    console = Console()
    client = require_engine()
    build_naive(client, args.base, args.naive, args.ca_bundle, console)
    table = Table("measure", "dlworkshop image", "naive (upstream setup, unpinned)")
    table.add_row(
        "image size", f"{size_gb(client, args.ours):.2f} GB", f"{size_gb(client, args.naive):.2f} GB"
    )
    table.add_row(
        "cold start to API answering",
        f"{cold_start_seconds(client, args.ours):.1f} s",
        f"{cold_start_seconds(client, args.naive):.1f} s",
    )
    for cpus in ("0.5", "1", "2"):
        table.add_row(
            f"TF intra / inter threads, --cpus {cpus}",
            thread_pools(client, args.ours, cpus),
            thread_pools(client, args.naive, cpus),
        )
    console.print(table)


if __name__ == "__main__":
    main()
