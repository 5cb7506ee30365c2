"""Benchmark: login to first cell for learners arriving together, on the hub `dlworkshop up` starts,
side by side with a hub set up the way jupyterhub-deploy-docker does it (plain DockerSpawner, no
limits or tuning) on the same machine and learner image.

    python benchmarks/surge.py [--build] [--image IMG] [--hub-image IMG] [--prefix NAME] [--repeat 3]
                               [--scenarios 1,10,30-cold,30-prewarmed] [--skip-plain] [--profile]
                               [--sweep 1,2,3,4,5,6,7,8]
    python benchmarks/surge.py --readme benchmarks/results/surge-<date>.json [files with a sweep]

Every learner does what a browser does: the login form, the spawn page's progress stream, a
notebook session (POST /api/sessions, as JupyterLab opens a notebook), the first cell over the
kernel's websocket. Every run waits for a quiet machine first (1-minute load average under
--quiet), and records the host's busy cores second by second (/proc/stat), the CPU a learner cost
all in, and beside its p95 the least p95 that cost allows in arrival order (the CPU bound).

Scenarios: 1 learner (3 tries one after the other); 10 and 30 arriving within --ramp seconds on a
hub with no server running; 30 arriving onto seats all started beforehand (ours only: the plain hub
has nothing like it), during which the idle cost of the 30 running servers is measured (cgroup CPU
over --idle seconds). Each scenario runs --repeat times, the two hubs taking turns (which goes first
alternates), and the machine's load average is recorded before each; the summary is the median of
the runs' p95s. --sweep measures the 30-cold room on our hub at each fixed start capacity (and
auto). --profile adds benchmarks/start_profile.py's figures, and each hub's arrival of one learner
phase by phase (benchmarks/arrival_profile.py: login and claim check, the hub's spawn work, the
container's create, the server's start, kernel, first cell, the kernel started ahead; CPU and wall
seconds, median of 3 samples per hub, the hubs taking turns). One results file per run,
benchmarks/results/surge-<UTC time>.json; --readme turns one into the README's table (between its
surge markers) and docs/surge.png. Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import docker
import httpx
from rich.console import Console

from dlworkshop import contract
from dlworkshop.clients import instructor, loadtest
from dlworkshop.errors import WorkshopError
from dlworkshop.local import local_hub
from dlworkshop.settings import Settings, parse_settings

sys.path.insert(0, str(Path(__file__).parent))
from arrival_profile import Meters, median_phases, one_arrival  # one learner, phase by phase
from host_trace import HostCpuTrace, pair_order, saturated_seconds, wait_for_quiet  # around each run
from machine import load_average, machine, revision  # what every results file records
from start_profile import cpu_seconds  # the sibling benchmark's cgroup reader
from surge_quota import learner_memory, room_the_planner_allows  # the learners' quota here
from surge_report import (  # the results: summary, README table and plot
    COLD_ROOM,
    OURS_HUB,
    PLAIN_HUB,
    RESULTS,
    SCENARIOS,
    arrival_order_p95,
    print_summary,
    summarise,
    write_readme,
)
from surge_report import (
    readme_block as readme_block,  # the README block's writer (its marker names this script)
)

CODE = "benchmark-code"
OURS = """
workshop: {{name: surge benchmark}}
# Every name a repeat logs in has a work folder (the one-learner tries, the 10, the 30 cold); 30 at once.
learners: {{count: {names}, expected_concurrent: {concurrent}}}
# The room's seats whatever the planner expects at once (auto: expected_concurrent, fewer on a 24 GiB host).
prewarm: {{seats: {room}}}
auth: {{mode: shared-code, access_code: {code}}}
image: {{name: {name}, tag: {tag}}}
resources: {{cpu: 1, memory: {memory}}}  # every taught episode runs in it (check refuses less)
hub: {{image: {hub_image}, port: {port}, container_name: {prefix}-bench-ours, network: {prefix}-bench-ours, data_volume: {prefix}-bench-ours-data, start_capacity: {capacity}}}
"""
# jupyterhub-deploy-docker's configuration, with DummyAuthenticator standing in for its
# NativeAuthenticator (and names prefixed, so benchmarks on a shared engine keep apart).
PLAIN_CONFIG = """
c = get_config()
c.JupyterHub.spawner_class = "dockerspawner.DockerSpawner"
c.DockerSpawner.image = "{image}"
c.DockerSpawner.network_name = "{network}"
c.DockerSpawner.name_template = "{name}-{{username}}"
c.DockerSpawner.notebook_dir = "/home/jovyan/work"
c.DockerSpawner.volumes = {{"{name}-user-{{username}}": "/home/jovyan/work"}}
c.DockerSpawner.remove = True
c.JupyterHub.hub_ip = "0.0.0.0"
c.JupyterHub.hub_connect_ip = "{name}"
c.JupyterHub.db_url = "sqlite:////tmp/jupyterhub.sqlite"
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = "{code}"
c.Authenticator.allow_all = True
"""
# Distinct names one repeat logs in to our hub (each with its own work folder); the pre-warmed
# learners take the seats' folders.
NAMES_PER_REPEAT = sum(size * tries for _, _, size, prewarmed, tries in SCENARIOS if not prewarmed)
# Learners who arrive alone, one after the other, each read phase by phase (--profile), per hub.
PROFILE_SAMPLES = 3


class PlainHub:
    def __init__(self, client: docker.DockerClient, prefix: str, port: int) -> None:
        self.client, self.port = client, port
        self.name = f"{prefix}-bench-plain"
        self.url = f"http://127.0.0.1:{port}"

    def start(self, image: str, hub_image: str, folder: Path) -> None:
        config = folder / "plain_config.py"
        config.write_text(PLAIN_CONFIG.format(image=image, network=self.name, name=self.name, code=CODE))
        self.client.networks.create(self.name, driver="bridge")
        self.client.containers.run(
            hub_image,
            ["jupyterhub", "-f", "/srv/plain_config.py"],
            name=self.name,
            detach=True,
            network=self.name,
            ports={"8000/tcp": ("127.0.0.1", self.port)},
            volumes={
                "/var/run/docker.sock": {"bind": "/var/run/docker.sock", "mode": "rw"},
                str(config): {"bind": "/srv/plain_config.py", "mode": "ro"},
            },
        )
        for _ in range(120):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/hub/api", timeout=2).status_code == 200:
                    return
            time.sleep(1)
        raise RuntimeError("the plain hub did not start")

    def stop(self) -> None:
        for container in self.client.containers.list(all=True, filters={"name": self.name}):
            if (container.name or "").startswith(self.name):
                container.remove(force=True)
        for network in self.client.networks.list(names=[self.name]):
            network.remove()
        for volume in self.client.volumes.list(filters={"name": f"{self.name}-user-"}):
            volume.remove(force=True)


class OurHub:
    def __init__(self, args: argparse.Namespace, console: Console) -> None:
        self.args, self.console = args, console
        self.url = f"http://127.0.0.1:{args.port}"
        self.memory, self.memory_why = learner_memory()
        self.concurrent = room_the_planner_allows(self.memory)
        if self.concurrent < COLD_ROOM:
            # 30 learners at the lesson's quota need more memory than a 24 GiB host has (the planner
            # refuses the start); what this benchmark measures, the arrival, uses a fraction of it.
            self.memory_why += (
                f"; learners.expected_concurrent {self.concurrent}: {COLD_ROOM} learners at {self.memory} "
                "exceed this host's memory if all peak at once, and `up` refuses that; "
                f"prewarm.seats {COLD_ROOM} (auto would follow expected_concurrent)"
            )
        self.settings = self.settings_for("auto")

    def settings_for(self, capacity: str | int) -> Settings:
        name, tag = self.args.image.rsplit(":", 1)
        return parse_settings(
            OURS.format(
                code=CODE,
                names=NAMES_PER_REPEAT + PROFILE_SAMPLES,
                memory=self.memory,
                name=name,
                tag=tag,
                hub_image=self.args.hub_image,
                port=self.args.port,
                prefix=self.args.prefix,
                capacity=capacity,
                concurrent=self.concurrent,
                room=COLD_ROOM,
            )
        )

    def restart(self, capacity: str | int = "auto") -> None:
        """A fresh hub, no server running, no name claimed (seats are claimed by the names that took them)."""
        self.stop()
        self.settings = self.settings_for(capacity)
        local_hub.up(self.settings, self.console)

    def stop(self) -> None:
        local_hub.down(self.settings, purge=True, console=Console(quiet=True), force=True)

    def admission_lines(self) -> list[str]:
        """What the hub said about its admission capacity (its log), for the results file."""
        try:
            logs = (
                docker.from_env()
                .containers.get(self.settings.hub.container_name)
                .logs()
                .decode(errors="replace")
            )
        except docker.errors.NotFound:
            return []
        return [
            line[line.index("dlworkshop: admitting") :]
            for line in logs.splitlines()
            if "dlworkshop: admitting" in line
        ]

    def idle_cpu(self, seconds: float) -> dict[str, Any]:
        """CPU the running learners' containers use over `seconds` with nobody using them (cgroup)."""
        containers = local_hub.learner_containers(docker.from_env(), self.settings)
        before = {c.id: cpu_seconds(c) for c in containers}
        time.sleep(seconds)
        used = sum(cpu_seconds(c) - before[c.id] for c in containers)
        return {
            "servers": len(containers),
            "seconds": seconds,
            "cpu_seconds": round(used, 3),
            "cores_together": round(used / seconds, 4),
            "cores_per_server": round(used / seconds / max(len(containers), 1), 5),
            "load_average": load_average(),
        }


def measure(url: str, learners: int, ramp: float, prefix: str, tries: int, cores: int) -> dict[str, Any]:
    """`tries` surges one after the other (a single learner is measured several times)."""
    runs = []
    busy = 0.0
    busy_cores: list[float] = []
    with HostCpuTrace() as trace:
        for attempt in range(tries):
            # Our hub's names are claimed with a secret; the plain hub's DummyAuthenticator ignores it.
            logins = loadtest.credentials(learners, f"{prefix}{attempt}-", CODE, None, instructor.secret_for)
            began = time.monotonic()
            surge = asyncio.run(loadtest.surge(url, logins, ramp, loadtest.DEFAULT_CODE, timeout=600))
            # Until the last first cell's output (the servers are stopped after: not counted).
            arrivals = loadtest.arrival_times(learners, ramp)
            last = max((at + r.ready for at, r in zip(arrivals, surge, strict=True) if r.ready), default=0.0)
            busy += trace.busy_between(began, began + last)
            busy_cores += trace.busy_cores(began, began + last)
            runs += surge
    ready = [r.ready for r in runs if r.ready is not None]
    cost = busy / max(len(runs), 1)
    return {
        "ran_code": len(ready),
        "learners": len(runs),
        "p50": round(loadtest.percentile(ready, 50), 2) if ready else None,
        "p95": round(loadtest.percentile(ready, 95), 2) if ready else None,
        "seconds": [round(value, 2) for value in ready],
        # The host's CPU from the first arrival to the last first cell, per learner.
        "host_cpu_per_learner": round(cost, 2),
        # The least p95 that cost allows in arrival order with every core busy (beside the p95).
        "cpu_bound_p95": round(arrival_order_p95(learners, ramp, cost, cores), 2),
        # The host's busy cores, second by second, and the seconds with every core busy.
        "busy_cores_per_s": busy_cores,
        "saturated_s": saturated_seconds(busy_cores, cores),
        # Where the time went: p50/p95/max of each step (login, start, kernel, first cell).
        "steps": {
            step: {k: round(v, 2) for k, v in row.items()} for step, row in loadtest.summary(runs).items()
        },
        "errors": sorted({r.error for r in runs if r.error}),
    }


def arrival_profiles(
    client: docker.DockerClient, ours: OurHub, plain: PlainHub, args: argparse.Namespace, quiet: Any
) -> dict[str, Any]:
    """Each hub's arrival of one learner, phase by phase (benchmarks/arrival_profile.py), the hubs
    taking turns, each sample on a quiet machine; the medians per phase."""
    hub_name = ours.settings.hub.container_name
    meters = {
        OURS_HUB: (ours.url, hub_name, lambda user: contract.learner_container_name(hub_name, user)),
        PLAIN_HUB: (plain.url, plain.name, lambda user: f"{plain.name}-{user}"),
    }
    hubs = [OURS_HUB] + ([] if args.skip_plain else [PLAIN_HUB])
    samples: dict[str, list[dict[str, dict[str, float]]]] = {hub: [] for hub in hubs}
    errors: list[str] = []
    for sample in range(PROFILE_SAMPLES):
        for hub in pair_order(sample, hubs):
            url, container, container_of = meters[hub]
            quiet()
            login = loadtest.credentials(1, f"p{sample}-", CODE, None, instructor.secret_for)[0]
            reader = Meters(client, client.containers.get(container).id or "", container_of)
            try:
                samples[hub].append(asyncio.run(one_arrival(url, login, reader, args.settle_profile)))
            except Exception as exc:  # one failed sample is reported, never the end of the run
                errors.append(f"{hub}, sample {sample + 1}: {type(exc).__name__}: {exc}")
    profile: dict[str, Any] = {hub: median_phases(runs) for hub, runs in samples.items() if runs}
    return profile | ({"errors": errors} if errors else {})


def write_results(results: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    results["summary"] = summarise(results["runs"])
    path = RESULTS / f"surge-{results['started']}.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    return path


def build_images(args: argparse.Namespace) -> None:
    """The learner and hub images from this checkout, under --image and --hub-image, built as the
    tests build theirs (the fixture data mirror: the benchmark's first cell needs none of the
    lesson's data)."""
    root = Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(root))
    from dlworkshop.image.base import build_base
    from dlworkshop.image.build import build_hub_image, build_learner_image
    from tests.fixtures.data import build_fixture_mirror

    base = build_base()
    mirror, registry = build_fixture_mirror()
    build_learner_image(args.image, "cpu", base_image=base, data_mirror=str(mirror), registry=registry)
    build_hub_image(args.hub_image, base)


def run_benchmark(args: argparse.Namespace, console: Console) -> Path:
    client = docker.from_env()
    if args.build:
        build_images(args)
    chosen = [s for s in SCENARIOS if s[0] in args.scenarios.split(",")]
    ours = OurHub(args, console)
    cores = int(machine()["cores"])
    results: dict[str, Any] = {
        "started": datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"),
        "machine": machine(),
        "image": args.image,
        "hub_image": args.hub_image,
        "revision": revision(),
        "ramp_s": args.ramp,
        "learner_quota": f"1 CPU, {ours.memory} (ours: {ours.memory_why}; the plain hub sets none)",
        "quiet_load": args.quiet,
        "repeat": args.repeat,
        "scenarios": [s[0] for s in chosen],
        "runs": [],
        "idle": [],
        "admission": [],
        "notes": args.note,
    }
    plain = PlainHub(client, args.prefix, args.plain_port)
    path = write_results(
        results
    )  # written again after every measurement: an interrupted run keeps what it has

    def record(hub: str, key: str, label: str, repeat: int, row: dict[str, Any], **extra: Any) -> None:
        row = {"hub": hub, "scenario": key, "label": label, "repeat": repeat, **extra, **row}
        results["runs"].append(row)
        console.print(
            f"{hub}, {label} (run {repeat + 1}): ran code {row['ran_code']}/{row['learners']}, p50 {row['p50']} s, "
            f"p95 {row['p95']} s (CPU bound {row['cpu_bound_p95']} s), load before {row['load_before']}"
        )
        write_results(results)

    def quiet() -> dict[str, Any]:
        """Wait for a quiet machine (the runs before it leave their load behind)."""
        with console.status(f"waiting for the load average to fall under {args.quiet}"):
            return wait_for_quiet(args.quiet, args.quiet_timeout)

    with tempfile.TemporaryDirectory() as scratch:
        try:
            plain.stop()  # leftovers of an interrupted run
            if args.profile:
                from start_profile import profile

                with console.status("start profile"):
                    results["start_profile"] = profile(client, args.image, 1.0, 3, 60)
                write_results(results)
            if not args.skip_plain and chosen:
                plain.start(args.image, args.hub_image, Path(scratch))
            for repeat in range(args.repeat if chosen else 0):
                ours.restart()
                if args.profile and repeat == 0:
                    results["arrival_profile"] = arrival_profiles(client, ours, plain, args, quiet)
                    write_results(results)
                for index, (key, label, size, prewarmed, tries) in enumerate(chosen):
                    urls = {OURS_HUB: ours.url, PLAIN_HUB: plain.url}
                    both = [OURS_HUB] + ([PLAIN_HUB] if not prewarmed and not args.skip_plain else [])
                    for hub in pair_order(repeat, both):  # neither hub always goes first
                        url = urls[hub]
                        if prewarmed:
                            local_hub.prewarm(ours.settings, Console(quiet=True))
                            time.sleep(args.settle)  # the kernels started ahead are ready, as on the day
                            idle = ours.idle_cpu(args.idle)
                            results["idle"].append({"repeat": repeat, **idle})
                            console.print(f"idle: {idle}")
                        calm = quiet()
                        row = measure(
                            url, size, args.ramp if size > 1 else 0, f"b{repeat}s{index}-", tries, cores
                        )
                        record(
                            hub,
                            key,
                            label,
                            repeat,
                            row,
                            first=hub == pair_order(repeat, both)[0],
                            **calm,
                        )
                results["admission"] += ours.admission_lines()
            for capacity in [c for c in args.sweep.split(",") if c]:
                ours.restart(capacity if capacity == "auto" else int(capacity))
                calm = quiet()
                row = measure(ours.url, 30, args.ramp, f"s{capacity}-", 1, cores)
                lines = ours.admission_lines()
                results["runs"].append(
                    {
                        "hub": OURS_HUB,
                        "scenario": "30-cold",
                        "sweep": capacity,
                        "admission": lines,
                        **calm,
                        **row,
                    }
                )
                console.print(
                    f"sweep, capacity {capacity}: {row['ran_code']}/{row['learners']}, p95 {row['p95']} s, load before {calm['load_before']} {lines[-1:]}"
                )
                write_results(results)
        finally:
            ours.stop()
            plain.stop()
    results["finished"] = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = write_results(results)
    print_summary(results, console)
    console.print(f"wrote {path}")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default="dlworkshop/learner:test")
    parser.add_argument("--hub-image", default="dlworkshop/hub:test")
    parser.add_argument(
        "--prefix", default="dlworkshop", help="Names of the benchmark's containers, networks, volumes."
    )
    parser.add_argument(
        "--port", type=int, default=8331, help="Our hub's port (the plain hub's: --plain-port)."
    )
    parser.add_argument("--plain-port", type=int, default=8332)
    parser.add_argument("--ramp", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scenarios", default=",".join(s[0] for s in SCENARIOS))
    parser.add_argument(
        "--settle", type=float, default=30, help="Seconds between pre-warm and the idle measurement."
    )
    parser.add_argument(
        "--idle", type=float, default=60, help="Seconds the idle servers' CPU is measured over."
    )
    parser.add_argument("--skip-plain", action="store_true", help="Measure dlworkshop up only.")
    parser.add_argument(
        "--build", action="store_true", help="Build --image and --hub-image from this checkout first."
    )
    parser.add_argument(
        "--quiet", type=float, default=0.8, help="Each run waits for a 1-minute load average under this."
    )
    parser.add_argument(
        "--quiet-timeout",
        type=float,
        default=900,
        help="Seconds a run waits for quiet at most (then runs, noted).",
    )
    parser.add_argument(
        "--settle-profile",
        type=float,
        default=20,
        help="Seconds after the first cell a --profile arrival watches for a kernel started ahead.",
    )
    parser.add_argument("--profile", action="store_true", help="Add start_profile.py's figures.")
    parser.add_argument(
        "--sweep", default="", help="Start capacities to measure the 30-cold room at (e.g. 1,2,4,8,auto)."
    )
    parser.add_argument(
        "--note", default="", help="A sentence for the results file and README (e.g. what else ran)."
    )
    parser.add_argument(
        "--readme",
        type=Path,
        nargs="+",
        metavar="RESULTS",
        help="Write README.md's table and plot from a results file (more files: their capacity sweeps too).",
    )
    args = parser.parse_args()
    if args.readme:
        write_readme(args.readme[0], args.readme[1:])
        return
    if not re.fullmatch(r"[a-z0-9-]+", args.prefix):
        raise SystemExit("--prefix: lower-case letters, digits and dashes")
    try:
        run_benchmark(args, Console())
    except WorkshopError as error:  # a start `up` refuses: its problems, not a traceback
        problems = "".join(f"\n  - {problem}" for problem in getattr(error, "problems", []))
        raise SystemExit(f"error: {error}{problems}") from None


if __name__ == "__main__":
    main()
