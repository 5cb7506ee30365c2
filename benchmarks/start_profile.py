"""Benchmark: where a learner server's start goes, phase by phase, in wall and CPU seconds.

    python benchmarks/start_profile.py [--image dlworkshop/learner:test] [--cpus 1] [--repeat 3] [--json FILE]
    python benchmarks/start_profile.py --readme benchmarks/results/start-profile-<date>.json ...

Phases: container create+start, Jupyter server answering, kernel started, first cell's output, and
the server idle for a minute after. CPU seconds are read from the container's cgroup, so they count
every process in it. Then the pieces measured alone (benchmarks/server_start.py): the single-user
server's start as JupyterHub runs it, with each extension manager, the imports it pays for, and
the login's claim check with the hash written before and now. Prints a table (and writes it as JSON with --json); not a test. --readme
turns committed results files into the README's start profile block.
`benchmarks/surge.py --profile` puts the same figures in its results file.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import docker
import httpx
from docker.models.containers import Container
from rich.console import Console
from rich.table import Table

from dlworkshop.cgroup_cpu import container_cpu_seconds
from dlworkshop.clients.smoke.jupyter import JupyterServer, run_code

sys.path.insert(0, str(Path(__file__).parent))
from machine import (  # what every results file records, and the README's generated blocks
    describe,
    load_average,
    machine,
    readme_command,
    relative,
    replace_readme_block,
)
from server_start import (  # pieces measured alone
    claim_check_cpu,
    import_costs,
    manager_setup_cpu,
    server_starts,
)

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BLOCK = "start profile"

TOKEN = "start-profile"


def cpu_seconds(container: Container) -> float:
    """Total CPU of the container so far, from the host's cgroup files (v1 or v2)."""
    seconds = container_cpu_seconds(container.id or "")
    if seconds is None:
        raise RuntimeError(f"no cgroup CPU accounting found for {container.name} under /sys/fs/cgroup")
    return seconds


def profile_once(
    client: docker.DockerClient, image: str, cpus: float, env: dict[str, str], idle: float = 0
) -> dict[str, tuple[float, float]]:
    phases: dict[str, tuple[float, float]] = {}
    began = time.monotonic()
    # (address, None): a free port on that address, which the SDK's stubs do not list.
    container = client.containers.run(  # type: ignore[call-overload]
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
        if idle:
            # What a server nobody uses costs (the kernel ahead refills only minutes later).
            time.sleep(10)
            settled = cpu_seconds(container)
            time.sleep(idle)
            phases[f"idle {idle:g} s (CPU of that time)"] = (idle, cpu_seconds(container) - settled)
    finally:
        container.remove(force=True)
    return phases


# Pieces of a start, each run alone in a fresh container: CPU seconds of the command and its children.
COMPONENTS = {
    "start hook (data links, lessons copied)": "python -m dlworkshop_learner.start true",
    "Python + jupyterhub-singleuser imports": "python -c 'import jupyterhub.singleuser'",
    "Jupyter server initialised (extensions loaded)": (
        "python -c 'from jupyter_server.serverapp import ServerApp; ServerApp().initialize([])'"
    ),
    "kernel started, first cell run": (
        "python -c 'from jupyter_client.manager import start_new_kernel as s; m, c = s(); "
        'c.execute_interactive("import numpy"); c.stop_channels(); m.shutdown_kernel(now=True)\''
    ),
}
RUSAGE = (
    "import resource, subprocess, sys; subprocess.run(sys.argv[1], shell=True, check=True); "
    "r = resource.getrusage(resource.RUSAGE_CHILDREN); print(r.ru_utime + r.ru_stime)"
)


def component_cpu(client: docker.DockerClient, image: str, command: str, cpus: float) -> float:
    output = client.containers.run(
        image, ["python", "-c", RUSAGE, command], remove=True, nano_cpus=int(cpus * 1e9), network_mode="none"
    )
    return float(output.decode().split()[-1])


def profile(client: docker.DockerClient, image: str, cpus: float, repeat: int, idle: float) -> dict[str, Any]:
    """The medians of `repeat` starts, phase by phase, and of each piece's CPU, as plain data."""
    profile_once(client, image, cpus, {})  # page cache warm
    runs = [profile_once(client, image, cpus, {}, idle if i == 0 else 0) for i in range(repeat)]
    phases = {
        phase: {
            "wall_s": round(statistics.median(r[phase][0] for r in runs if phase in r), 3),
            "cpu_s": round(statistics.median(r[phase][1] for r in runs if phase in r), 3),
        }
        for phase in runs[0]
    }
    pieces = {
        piece: round(statistics.median(component_cpu(client, image, command, cpus) for _ in range(repeat)), 3)
        for piece, command in COMPONENTS.items()
    }
    return {
        "image": image,
        "cpus": cpus,
        "repeat": repeat,
        "phases": phases,
        "pieces_cpu_s": pieces,
        "singleuser_start": server_starts(client, image, cpus, max(repeat, 9)),
        "imports_cpu_s": import_costs(client, image, repeat),
        "extension_manager_setup_cpu_s": manager_setup_cpu(client, image, max(repeat, 9)),
    }


def image_label(image: str, about: Any) -> str:
    """An image as the README names it: what the results file says of it, or its revision label."""
    if isinstance(about, str):
        return f"`{image}`: {about}"
    revision = (about or {}).get("org.opencontainers.image.revision", "")
    return f"`{image}`" + (f" (revision {revision[:7]})" if revision else "")


def readme_profile(results: dict[str, Any], path: str) -> list[str]:
    """One results file as README lines: where and when, then phases and pieces per image."""
    profiles = results["profiles"]
    machine_info = results.get("machine")
    load_before, load_after = results["load_average_before"], results["load_average_after"]
    lines = [
        f"Measured {results['measured']} by `benchmarks/start_profile.py` (results file `{path}`) on "
        + (describe(machine_info) if machine_info else "a machine the file does not describe")
        + f"; 1-minute load average {load_before[0]:g} before, {load_after[0]:g} after; "
        + f"median of {profiles[0]['repeat']} starts at `--cpus {profiles[0]['cpus']:g}`.",
        "",
        "| CPU s (wall s), cumulative | "
        + " | ".join(image_label(p["image"], results["images"].get(p["image"])) for p in profiles)
        + " |",
        "|---" * (len(profiles) + 1) + "|",
    ]
    for phase in profiles[0]["phases"]:
        cells = []
        for profile in profiles:
            row = profile["phases"].get(phase)
            cells.append(f"{row['cpu_s']:.2f} ({row['wall_s']:.2f})" if row else "-")
        lines.append(f"| {phase} | " + " | ".join(cells) + " |")
    for piece in profiles[0]["pieces_cpu_s"]:
        cells = [f"{p['pieces_cpu_s'][piece]:.2f}" if piece in p["pieces_cpu_s"] else "-" for p in profiles]
        lines.append(f"| alone in a fresh container: {piece} | " + " | ".join(cells) + " |")
    for variant in profiles[0].get("singleuser_start", {}):
        cells = []
        for profile in profiles:
            row = profile.get("singleuser_start", {}).get(variant)
            cells.append(f"{row['cpu_s']:.2f} ({row['wall_s']:.2f})" if row else "-")
        lines.append(f"| jupyterhub-singleuser until it answers, {variant} | " + " | ".join(cells) + " |")
    for label in profiles[0].get("imports_cpu_s", {}):
        cells = [
            f"{p['imports_cpu_s'][label]:.2f}" if label in p.get("imports_cpu_s", {}) else "-"
            for p in profiles
        ]
        lines.append(f"| import alone: {label} | " + " | ".join(cells) + " |")
    for label in profiles[0].get("extension_manager_setup_cpu_s", {}):
        cells = [
            f"{p['extension_manager_setup_cpu_s'][label]:.3f}"
            if label in p.get("extension_manager_setup_cpu_s", {})
            else "-"
            for p in profiles
        ]
        lines.append(f"| set-up of JupyterLab's extension manager, {label} | " + " | ".join(cells) + " |")
    if results.get("claim_check_cpu_s"):
        lines += [
            "",
            "A login's claim check (CPU s, median, on this machine): "
            + "; ".join(f"{label} {seconds:.3f}" for label, seconds in results["claim_check_cpu_s"].items())
            + ".",
        ]
    return lines


def readme_block(files: list[Path]) -> str:
    """The README's start profile block from committed results files, newest first as given."""
    lines: list[str] = []
    for path in files:
        results = json.loads(path.read_text())
        lines += ([""] if lines else []) + readme_profile(results, relative(path, ROOT))
    return "\n".join(lines)


def write_readme(files: list[Path]) -> None:
    replace_readme_block(
        README, BLOCK, readme_command("benchmarks/start_profile.py", files, ROOT), readme_block(files)
    )
    print(f"README.md's start profile from {', '.join(map(str, files))}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", action="append", help="image to profile (repeatable)")
    parser.add_argument("--cpus", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--idle", type=float, default=60, help="Seconds of idle server measured (0: none).")
    parser.add_argument("--json", type=Path, help="Write the figures to this file too.")
    parser.add_argument(
        "--describe",
        action="append",
        default=[],
        metavar="IMAGE=TEXT",
        help="What an image is, for the results file and the README (e.g. 'main before this change').",
    )
    parser.add_argument(
        "--readme",
        type=Path,
        nargs="+",
        metavar="RESULTS",
        help="Write README.md's start profile from results files.",
    )
    args = parser.parse_args()
    if args.readme:
        write_readme(args.readme)
        return
    images = args.image or ["dlworkshop/learner:test"]
    client = docker.from_env()
    console = Console()
    started, load_before = datetime.now(UTC), load_average()
    profiles = []
    for image in images:
        with console.status(f"profiling {image}"):
            profiles.append(profile(client, image, args.cpus, args.repeat, args.idle))
    table = Table(
        "image",
        "phase",
        "wall s (median, cumulative)",
        "CPU s (median, cumulative)",
        title=f"Learner server start at --cpus {args.cpus:g}",
    )
    for result in profiles:
        for phase, row in result["phases"].items():
            table.add_row(result["image"], phase, f"{row['wall_s']:.2f}", f"{row['cpu_s']:.2f}")
    console.print(table)
    pieces = Table("image", "piece", "CPU s (median)", title="Where a start's CPU goes")
    for result in profiles:
        for piece, seconds in result["pieces_cpu_s"].items():
            pieces.add_row(result["image"], piece, f"{seconds:.2f}")
    console.print(pieces)
    if args.json:
        results: dict[str, Any] = {
            "measured": started.strftime("%Y-%m-%d %H:%M UTC"),
            "command": "python benchmarks/start_profile.py " + " ".join(sys.argv[1:]),
            "machine": machine(),
            "load_average_before": load_before,
            "load_average_after": load_average(),
            "images": {image: client.images.get(image).attrs["Config"]["Labels"] for image in images},
            "profiles": profiles,
            "claim_check_cpu_s": claim_check_cpu(),
        }
        about: dict[str, Any] = results["images"]
        for described in args.describe:  # said beside the image's revision label
            image, _, text = described.partition("=")
            revision = (about.get(image) or {}).get("org.opencontainers.image.revision", "")
            about[image] = text + (f" (revision {revision[:7]})" if revision else "")
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
