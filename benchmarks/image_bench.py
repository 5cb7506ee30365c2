"""Benchmark: our learner image against one built the upstream lesson's way, on the same base.

Measures, side by side: image size (once), cold start from `docker run` until the Jupyter server's
API answers (--repeat times each, the two images taking turns, which goes first alternating), and
the TensorFlow thread pools under --cpus 0.5, 1 and 2. The machine's load average is recorded
before each measurement. One results file per run, benchmarks/results/image-bench-<UTC time>.json,
with the machine, the Docker client and engine, the base image and the TensorFlow each image holds
(`pip show` inside it: the naive one resolves whatever is newest); --readme turns one into the
README's image table (between its markers). Not a test: numbers depend on the machine.

    python benchmarks/image_bench.py [--ours dlworkshop/learner:test] [--base dlworkshop/base:bookworm]
                                     [--naive dlworkshop/naive-learner:bench] [--repeat 5] [--prefix NAME]
    python benchmarks/image_bench.py --readme benchmarks/results/image-bench-<UTC time>.json
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from dlworkshop.image.build import run_build
from dlworkshop.image.docker import require_engine

sys.path.insert(0, str(Path(__file__).parent))
from machine import (  # what every results file records, and the README's generated blocks
    describe,
    load_average,
    machine,
    readme_command,
    replace_readme_block,
)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results"
README = ROOT / "README.md"
BLOCK = "image table"  # the README's generated block (benchmarks/machine.py)
# The upstream lesson's setup: these packages, unpinned, into a virtual environment.
NAIVE_PACKAGES = "jupyter seaborn scikit-learn pandas tensorflow pydot"
NAIVE_DOCKERFILE = f"""\
ARG BASE_IMAGE
FROM ${{BASE_IMAGE}}
RUN --mount=type=secret,id=ca_bundle python3 -m venv /opt/venv \\
    && if [ -s /run/secrets/ca_bundle ]; then export PIP_CERT=/run/secrets/ca_bundle; fi \\
    && /opt/venv/bin/pip install --no-cache-dir {NAIVE_PACKAGES}
ENV PATH=/opt/venv/bin:$PATH
"""
OURS, NAIVE = "ours", "naive"
LABELS = {OURS: "dlworkshop image", NAIVE: "upstream way"}
CPU_QUOTAS = ("0.5", "1", "2")
TENSORFLOW_PACKAGES = ("tensorflow", "tensorflow-cpu", "keras")
THREADS = "import tensorflow as tf; print(tf.config.threading.get_intra_op_parallelism_threads(), tf.config.threading.get_inter_op_parallelism_threads())"
COLD_START_LIMIT_S = 120


def build_naive(client: str, base: str, tag: str, ca_bundle: Path, console: Console) -> None:
    with tempfile.TemporaryDirectory() as context:
        (Path(context) / "Dockerfile").write_text(NAIVE_DOCKERFILE)
        command = [client, "build", "--progress", "plain", "--build-arg", f"BASE_IMAGE={base}", "-t", tag]
        if ca_bundle.is_file():
            command += ["--secret", f"id=ca_bundle,src={ca_bundle}"]
        run_build([*command, context], console, f"building the naive image {tag}")


def image_facts(client: str, image: str) -> dict[str, Any]:
    """What `docker image inspect` says of an image: its id, size in bytes, creation, revision label."""
    out = subprocess.run(
        [client, "image", "inspect", "--format", "{{json .}}", image], capture_output=True, text=True
    )
    if out.returncode != 0:
        raise SystemExit(f"image {image} not found: build it first (scripts/test builds the test images)")
    inspected = json.loads(out.stdout)
    labels = inspected.get("Config", {}).get("Labels") or {}
    return {
        "reference": image,
        "id": inspected["Id"],
        "size_bytes": inspected["Size"],
        "created": inspected.get("Created"),
        "revision": labels.get("org.opencontainers.image.revision"),
    }


def run_offline(client: str, image: str, name: str, *command: str, limits: tuple[str, ...] = ()) -> str:
    """A one-off container of `image` with no network (`docker run` options in `limits`): its output."""
    out = subprocess.run(
        [client, "run", "--rm", "--name", name, "--network", "none", *limits, image, *command],
        capture_output=True,
        text=True,
    )
    return out.stdout + out.stderr


def package_versions(client: str, image: str, name: str) -> dict[str, str]:
    """TensorFlow's and Keras's versions in an image (`pip show`, the start hook bypassed)."""
    shown = run_offline(
        client, image, name, "-m", "pip", "show", *TENSORFLOW_PACKAGES, limits=("--entrypoint", "python")
    )
    return parse_pip_show(shown)


def parse_pip_show(out: str) -> dict[str, str]:
    names = re.findall(r"^Name: (\S+)$", out, re.MULTILINE)
    versions = re.findall(r"^Version: (\S+)$", out, re.MULTILINE)
    return dict(zip(names, versions, strict=True))


def cold_start(client: str, image: str, name: str) -> dict[str, Any]:
    """Seconds from `docker run` to the Jupyter server's API answering (None, with the container's
    last log lines, when it did not answer within COLD_START_LIMIT_S)."""
    subprocess.run([client, "rm", "-f", name], capture_output=True)  # a leftover of an interrupted run
    started = time.monotonic()
    container = subprocess.run(
        [
            client,
            "run",
            "-d",  # no --rm: the logs of a server that died are kept until `finally`
            "--name",
            name,
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
        while time.monotonic() - started < COLD_START_LIMIT_S:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api", timeout=2).status_code == 200:
                    return {"seconds": round(time.monotonic() - started, 2)}
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        logs = subprocess.run([client, "logs", "--tail", "20", container], capture_output=True, text=True)
        return {"seconds": None, "error": (logs.stdout + logs.stderr)[-2000:]}
    finally:
        subprocess.run([client, "rm", "-f", container], capture_output=True)


def thread_pools(client: str, image: str, cpus: str, name: str) -> dict[str, Any]:
    """TensorFlow's intra- and inter-op pool sizes in a container limited to `cpus` (0: its default,
    one thread per host core)."""
    out = run_offline(client, image, name, "python", "-c", THREADS, limits=("--cpus", cpus))
    numbers = re.findall(r"^(\d+) (\d+)$", out, re.MULTILINE)
    if numbers:
        intra, inter = numbers[-1]
        return {"intra": int(intra), "inter": int(inter)}
    return {"intra": None, "inter": None, "error": out[-2000:]}


def summarise(results: dict[str, Any]) -> dict[str, Any]:
    """Each image's size, the median of its cold starts (and each one), its thread pools per quota."""
    measurements = results["measurements"]
    cold = {
        which: [m["seconds"] for m in measurements if m["measure"] == "cold_start" and m["image"] == which]
        for which in (OURS, NAIVE)
    }
    answered = {which: [s for s in values if s is not None] for which, values in cold.items()}
    return {
        "size_gb": {
            m["image"]: round(m["size_bytes"] / 1e9, 2) for m in measurements if m["measure"] == "size"
        },
        "cold_start": {
            which: {
                "median_s": round(statistics.median(answered[which]), 2) if answered[which] else None,
                "seconds": cold[which],
                "timed_out": cold[which].count(None),
            }
            for which in (OURS, NAIVE)
        },
        "threads": {
            cpus: {
                m["image"]: [m["intra"], m["inter"]]
                for m in measurements
                if m["measure"] == "threads" and m["cpus"] == cpus
            }
            for cpus in results["cpu_quotas"]
        },
    }


def write_results(results: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    results["summary"] = summarise(results)
    path = RESULTS / f"image-bench-{results['started']}.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    return path


def run_benchmark(args: argparse.Namespace, console: Console) -> Path:
    client = require_engine()
    base = image_facts(client, args.base)
    ours = image_facts(client, args.ours)
    build_naive(client, args.base, args.naive, args.ca_bundle, console)
    images = {OURS: args.ours, NAIVE: args.naive}
    docker_client = subprocess.run(
        [client, "version", "--format", "{{.Client.Version}}"], capture_output=True, text=True
    ).stdout.strip()
    results: dict[str, Any] = {
        "started": datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"),
        "machine": machine(),
        "docker_client": docker_client,
        "images": {"base": base, OURS: ours, NAIVE: image_facts(client, args.naive)},
        "naive_packages": NAIVE_PACKAGES,
        "tensorflow": {
            which: package_versions(client, image, f"{args.prefix}-pip-{which}")
            for which, image in images.items()
        },
        "repeat": args.repeat,
        "cpu_quotas": list(CPU_QUOTAS),
        "measurements": [],
        "notes": args.note,
    }

    def record(measure: str, which: str, row: dict[str, Any], load: list[float], **extra: Any) -> None:
        results["measurements"].append(
            {"measure": measure, "image": which, **extra, **row, "load_before": load}
        )
        console.print(f"{measure} {LABELS[which]} {extra or ''}: {row}, load before {load}")
        write_results(results)  # after every measurement: an interrupted run keeps what it has

    for which in (OURS, NAIVE):
        record("size", which, {"size_bytes": results["images"][which]["size_bytes"]}, load_average())
    for repeat in range(args.repeat):
        for which in (OURS, NAIVE) if repeat % 2 == 0 else (NAIVE, OURS):  # neither always goes first
            load = load_average()
            row = cold_start(client, images[which], f"{args.prefix}-cold-{which}")
            record("cold_start", which, row, load, repeat=repeat)
    for index, cpus in enumerate(CPU_QUOTAS):
        for which in (OURS, NAIVE) if index % 2 == 0 else (NAIVE, OURS):
            load = load_average()
            row = thread_pools(client, images[which], cpus, f"{args.prefix}-threads-{which}")
            record("threads", which, row, load, cpus=cpus)
    results["finished"] = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = write_results(results)
    print_summary(results, console)
    console.print(f"wrote {path}")
    return path


def _seconds(value: float | None) -> str:
    return "timed out" if value is None else f"{value:.1f}"


def _threads(pools: list[int | None] | None) -> str:
    return "?" if not pools or None in pools else f"{pools[0]}/{pools[1]}"


def _range(values: list[float]) -> str:
    low, high = f"{min(values, default=0):.1f}", f"{max(values, default=0):.1f}"
    return low if low == high else f"{low} to {high}"


def _versions(versions: dict[str, str]) -> str:
    return ", ".join(f"{name} {version}" for name, version in versions.items()) or "none found"


def print_summary(results: dict[str, Any], console: Console) -> None:
    summary = results["summary"]
    table = Table("measure", LABELS[OURS], f"{LABELS[NAIVE]} (unpinned)", title="Learner image")
    table.add_row("image size", *(f"{summary['size_gb'].get(w, 0):.2f} GB" for w in (OURS, NAIVE)))
    table.add_row(
        f"cold start, median of {results['repeat']} (each)",
        *(
            f"{_seconds(summary['cold_start'][w]['median_s'])} s "
            f"({', '.join(_seconds(s) for s in summary['cold_start'][w]['seconds'])})"
            for w in (OURS, NAIVE)
        ),
    )
    for cpus, pools in summary["threads"].items():
        table.add_row(
            f"TF intra / inter threads, --cpus {cpus}", *(_threads(pools.get(w)) for w in (OURS, NAIVE))
        )
    table.add_row("TensorFlow", *(_versions(results["tensorflow"][w]) for w in (OURS, NAIVE)))
    console.print(table)


def readme_table(results: dict[str, Any]) -> str:
    """The README's image table, from a results file: both images side by side, with the date, the
    machine, its load and the TensorFlow each image held."""
    summary = results["summary"]
    loads = [m["load_before"][0] for m in results["measurements"]]
    started = datetime.strptime(results["started"], "%Y%m%dT%H%M%SZ").strftime("%Y-%m-%d %H:%M UTC")
    tensorflow = results["tensorflow"]
    lines = [
        f"Measured {started} by `benchmarks/image_bench.py` (results file "
        f"`benchmarks/results/image-bench-{results['started']}.json`) on {describe(results['machine'])}, "
        f"against an image built the upstream lesson's way (unpinned `pip install {results['naive_packages']}` "
        f"on the same base, `{results['images']['base']['reference']}`; it resolved {_versions(tensorflow[NAIVE])}, "
        f"ours holds {_versions(tensorflow[OURS])}); cold start {results['repeat']} times each, the images "
        f"taking turns; 1-minute load average before a measurement {_range(loads)}."
        + (f" {results['notes']}" if results.get("notes") else ""),
        "",
        f"| measure | {LABELS[OURS]} | {LABELS[NAIVE]} |",
        "|---|---|---|",
    ]
    size = summary["size_gb"]
    lines.append(
        f"| image size | {size[OURS]:.2f} GB (with every dataset) | {size[NAIVE]:.2f} GB (no data) |"
    )
    cold = summary["cold_start"]
    cells = [
        f"{_seconds(cold[w]['median_s'])} s ({', '.join(_seconds(s) for s in cold[w]['seconds'])})"
        for w in (OURS, NAIVE)
    ]
    lines.append(
        f"| cold start until the Jupyter API answers, median of {results['repeat']} (each run) "
        f"| {cells[0]}; the start hook links data and copies lessons | {cells[1]} |"
    )
    quotas = list(summary["threads"])
    pools = {w: [summary["threads"][cpus].get(w) for cpus in quotas] for w in (OURS, NAIVE)}
    cells = [", ".join(_threads(p) for p in pools[w]) for w in (OURS, NAIVE)]
    cells = [
        cell
        + (" (0: TensorFlow's default, every host core)" if any(0 in (p or []) for p in pools[w]) else "")
        for cell, w in zip(cells, (OURS, NAIVE), strict=True)
    ]
    label = " / ".join(f"`{cpus}`" if index else f"`--cpus {cpus}`" for index, cpus in enumerate(quotas))
    lines.append(f"| TensorFlow intra / inter-op threads at {label} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


def readme_block(files: list[Path]) -> str:
    """The README's image block from a committed results file."""
    (results_file,) = files
    return readme_table(json.loads(results_file.read_text()))


def write_readme(results_file: Path) -> None:
    command = readme_command("benchmarks/image_bench.py", [results_file], ROOT)
    replace_readme_block(README, BLOCK, command, readme_block([results_file]))
    print(f"README.md's image table from {results_file}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ours", default="dlworkshop/learner:test")
    parser.add_argument("--naive", default="dlworkshop/naive-learner:bench", help="Tag of the image built.")
    parser.add_argument("--base", default="dlworkshop/base:bookworm")
    parser.add_argument("--ca-bundle", type=Path, default=Path("/etc/ssl/certs/ca-certificates.crt"))
    parser.add_argument("--repeat", type=int, default=5, help="Cold starts of each image.")
    parser.add_argument("--prefix", default="dlworkshop-bench", help="Names of the benchmark's containers.")
    parser.add_argument(
        "--note", default="", help="A sentence for the results file and README (e.g. what else ran)."
    )
    parser.add_argument(
        "--readme", type=Path, metavar="RESULTS", help="Write README.md's image table from a results file."
    )
    args = parser.parse_args()
    if args.readme:
        write_readme(args.readme)
        return
    if not re.fullmatch(r"[a-z0-9-]+", args.prefix):
        raise SystemExit("--prefix: lower-case letters, digits and dashes")
    run_benchmark(args, Console())


if __name__ == "__main__":
    main()
