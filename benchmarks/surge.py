"""Benchmark: login to first cell for learners arriving together, on the hub `dlworkshop up` starts,
side by side with a hub set up the way jupyterhub-deploy-docker does it (plain DockerSpawner, no
limits or tuning) on the same machine and learner image.

    python benchmarks/surge.py [--image IMG] [--hub-image IMG] [--prefix NAME] [--repeat 3]
                               [--scenarios 1,10,30-cold,30-prewarmed] [--skip-plain] [--profile]
                               [--sweep 1,2,3,4,5,6,7,8]
    python benchmarks/surge.py --readme benchmarks/results/surge-<date>.json [files with a sweep]

Scenarios: 1 learner (3 tries one after the other); 10 and 30 arriving within --ramp seconds on a
hub with no server running; 30 arriving onto seats all started beforehand (ours only: the plain hub
has nothing like it), during which the idle cost of the 30 running servers is measured (cgroup CPU
over --idle seconds). Each scenario runs --repeat times, the two hubs taking turns (which goes first
alternates), and the machine's load average is recorded before each; the summary is the median of
the runs' p95s. --sweep measures the 30-cold room on our hub at each fixed start capacity (and
auto). --profile adds benchmarks/start_profile.py's figures. One results file per run,
benchmarks/results/surge-<UTC time>.json; --readme turns one into the README's table (between its
surge markers) and docs/surge.png. Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import docker
import httpx
from rich.console import Console
from rich.table import Table

from dlworkshop import instructor, loadtest, local_hub
from dlworkshop.capacity import cpu_times
from dlworkshop.settings import Settings, parse_settings

sys.path.insert(0, str(Path(__file__).parent))
from machine import (  # what every results file records, and the README's generated blocks
    describe,
    load_average,
    machine,
    readme_command,
    replace_readme_block,
)
from start_profile import cpu_seconds  # the sibling benchmark's cgroup reader

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results"
README = ROOT / "README.md"
PLOT = ROOT / "docs" / "surge.png"
BLOCK = "surge table"  # the README's generated block (benchmarks/machine.py)
CODE = "benchmark-code"
OURS_HUB, PLAIN_HUB = "dlworkshop up", "plain DockerSpawner"
OURS = """
workshop: {{name: surge benchmark}}
# Every name a repeat logs in has a work folder (the one-learner tries, the 10, the 30 cold); 30 at once.
learners: {{count: {names}, expected_concurrent: 30}}
auth: {{mode: shared-code, access_code: {code}}}
image: {{name: {name}, tag: {tag}}}
resources: {{cpu: 1, memory: 640M}}
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
# (key, label, learners, pre-warmed, tries): arriving within --ramp seconds (a single learner at once).
SCENARIOS = [
    ("1", "1 learner (3 tries)", 1, False, 3),
    ("10", "10 learners", 10, False, 1),
    ("30-cold", "30 learners, cold", 30, False, 1),
    ("30-prewarmed", "30 learners, pre-warmed seats (all running)", 30, True, 1),
]
# Distinct names one repeat logs in to our hub (each with its own work folder); the pre-warmed
# learners take the seats' folders.
NAMES_PER_REPEAT = sum(size * tries for _, _, size, prewarmed, tries in SCENARIOS if not prewarmed)


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
        self.settings = self.settings_for("auto")

    def settings_for(self, capacity: str | int) -> Settings:
        name, tag = self.args.image.rsplit(":", 1)
        return parse_settings(
            OURS.format(
                code=CODE,
                names=NAMES_PER_REPEAT,
                name=name,
                tag=tag,
                hub_image=self.args.hub_image,
                port=self.args.port,
                prefix=self.args.prefix,
                capacity=capacity,
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


class HostCpuTrace:
    """The whole host's busy CPU seconds (/proc/stat), sampled every `interval` s in a thread: what a
    surge cost all in (the hub, Docker, the servers and kernels, this benchmark's own clients)."""

    def __init__(self, interval: float = 0.2) -> None:
        self.interval = interval
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            busy, _ = cpu_times() or (0, 0)
            self.samples.append((time.monotonic(), busy / os.sysconf("SC_CLK_TCK")))
            self._stop.wait(self.interval)

    def __enter__(self) -> HostCpuTrace:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def busy_between(self, start: float, end: float) -> float:
        """Busy CPU seconds from `start` to `end` (time.monotonic()), from the nearest samples."""

        def at(moment: float) -> float:
            return min(self.samples, key=lambda sample: abs(sample[0] - moment))[1]

        return at(end) - at(start)


def arrival_order_waits(learners: int, ramp: float, cpu_seconds: float, cores: int) -> list[float]:
    """Each wait, login to first cell, of `learners` arriving evenly over `ramp` s, each costing
    `cpu_seconds` all in, admitted in arrival order with every core busy from the first arrival."""
    done, waits = 0.0, []
    for arrived in loadtest.arrival_times(learners, ramp):
        done = max(done, arrived) + cpu_seconds / cores
        waits.append(done - arrived)
    return waits


def arrival_order_p95(learners: int, ramp: float, cpu_seconds: float, cores: int) -> float:
    """The p95 of those waits: what the machine allows at that cost, however the starts are
    scheduled in that order."""
    return loadtest.percentile(arrival_order_waits(learners, ramp, cpu_seconds, cores), 95)


def cost_for_p95(learners: int, ramp: float, p95: float, cores: int) -> float:
    """The CPU seconds a learner may cost all in for the arrival-order p95 to be `p95` (bisection:
    the p95 grows with the cost)."""
    low, high = 0.0, 100.0
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (
            (middle, high) if arrival_order_p95(learners, ramp, middle, cores) < p95 else (low, middle)
        )
    return (low + high) / 2


def measure(url: str, learners: int, ramp: float, prefix: str, tries: int) -> dict[str, Any]:
    """`tries` surges one after the other (a single learner is measured several times)."""
    runs = []
    busy = 0.0
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
            runs += surge
    ready = [r.ready for r in runs if r.ready is not None]
    return {
        "ran_code": len(ready),
        "learners": len(runs),
        "p50": round(loadtest.percentile(ready, 50), 2) if ready else None,
        "p95": round(loadtest.percentile(ready, 95), 2) if ready else None,
        "seconds": [round(value, 2) for value in ready],
        # The host's CPU from the first arrival to the last first cell, per learner.
        "host_cpu_per_learner": round(busy / max(len(runs), 1), 2),
        # Where the time went: p50/p95/max of each step (login, start, kernel, first cell).
        "steps": {
            step: {k: round(v, 2) for k, v in row.items()} for step, row in loadtest.summary(runs).items()
        },
        "errors": sorted({r.error for r in runs if r.error}),
    }


def summarise(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per scenario and hub: the median of the runs' p95s (and p50s), and who ran code."""
    summary: dict[str, dict[str, Any]] = {}
    for run in runs:
        if run.get("sweep") is not None:
            continue
        row = summary.setdefault(run["scenario"], {}).setdefault(
            run["hub"], {"p95s": [], "p50s": [], "cpu_per_learner": [], "ran_code": 0, "learners": 0}
        )
        if run["p95"] is not None:
            row["p95s"].append(run["p95"])
            row["p50s"].append(run["p50"])
        if run.get("host_cpu_per_learner") is not None:
            row["cpu_per_learner"].append(run["host_cpu_per_learner"])
        row["ran_code"] += run["ran_code"]
        row["learners"] += run["learners"]
    for hubs in summary.values():
        for row in hubs.values():
            row["median_p95"] = round(statistics.median(row["p95s"]), 2) if row["p95s"] else None
            row["median_p50"] = round(statistics.median(row["p50s"]), 2) if row["p50s"] else None
            cpu = row["cpu_per_learner"]
            row["median_cpu_per_learner"] = round(statistics.median(cpu), 2) if cpu else None
    return summary


def write_results(results: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    results["summary"] = summarise(results["runs"])
    path = RESULTS / f"surge-{results['started']}.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    return path


def run_benchmark(args: argparse.Namespace, console: Console) -> Path:
    client = docker.from_env()
    chosen = [s for s in SCENARIOS if s[0] in args.scenarios.split(",")]
    results: dict[str, Any] = {
        "started": datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"),
        "machine": machine(),
        "image": args.image,
        "hub_image": args.hub_image,
        "ramp_s": args.ramp,
        "learner_quota": "1 CPU, 640M (ours; the plain hub sets none)",
        "repeat": args.repeat,
        "scenarios": [s[0] for s in chosen],
        "runs": [],
        "idle": [],
        "admission": [],
        "notes": args.note,
    }
    ours = OurHub(args, console)
    plain = PlainHub(client, args.prefix, args.plain_port)
    path = write_results(
        results
    )  # written again after every measurement: an interrupted run keeps what it has

    def record(hub: str, key: str, label: str, repeat: int, row: dict[str, Any], **extra: Any) -> None:
        row = {"hub": hub, "scenario": key, "label": label, "repeat": repeat, **extra, **row}
        results["runs"].append(row)
        console.print(
            f"{hub}, {label} (run {repeat + 1}): ran code {row['ran_code']}/{row['learners']}, p50 {row['p50']} s, p95 {row['p95']} s, load before {row['load_before']}"
        )
        write_results(results)

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
                for index, (key, label, size, prewarmed, tries) in enumerate(chosen):
                    hubs = [(OURS_HUB, ours.url)]
                    if not prewarmed and not args.skip_plain:
                        hubs.append((PLAIN_HUB, plain.url))
                    if repeat % 2:
                        hubs.reverse()  # neither hub always goes first
                    for hub, url in hubs:
                        if prewarmed:
                            local_hub.prewarm(ours.settings, Console(quiet=True))
                            time.sleep(args.settle)  # the kernels started ahead are ready, as on the day
                            idle = ours.idle_cpu(args.idle)
                            results["idle"].append({"repeat": repeat, **idle})
                            console.print(f"idle: {idle}")
                        load = load_average()
                        row = measure(url, size, args.ramp if size > 1 else 0, f"b{repeat}s{index}-", tries)
                        record(hub, key, label, repeat, row, load_before=load)
                results["admission"] += ours.admission_lines()
            for capacity in [c for c in args.sweep.split(",") if c]:
                ours.restart(capacity if capacity == "auto" else int(capacity))
                load = load_average()
                row = measure(ours.url, 30, args.ramp, f"s{capacity}-", 1)
                lines = ours.admission_lines()
                results["runs"].append(
                    {
                        "hub": OURS_HUB,
                        "scenario": "30-cold",
                        "sweep": capacity,
                        "load_before": load,
                        "admission": lines,
                        **row,
                    }
                )
                console.print(
                    f"sweep, capacity {capacity}: {row['ran_code']}/{row['learners']}, p95 {row['p95']} s, load before {load} {lines[-1:]}"
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


def print_summary(results: dict[str, Any], console: Console) -> None:
    table = Table(
        "scenario",
        "hub",
        "ran code",
        "p95 of each run",
        "median p95",
        "median p50",
        title="Workshop-day surge",
    )
    for key, hubs in results["summary"].items():
        for hub, row in hubs.items():
            table.add_row(
                key,
                hub,
                f"{row['ran_code']}/{row['learners']}",
                ", ".join(f"{v:.1f}" for v in row["p95s"]),
                f"{row['median_p95']}",
                f"{row['median_p50']}",
            )
    console.print(table)
    sweep = [r for r in results["runs"] if r.get("sweep") is not None]
    if sweep:
        console.print(
            "sweep (30 cold, our hub): " + ", ".join(f"{r['sweep']}: p95 {r['p95']} s" for r in sweep)
        )


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def readme_table(results: dict[str, Any], sweeps: list[dict[str, Any]] | None = None) -> str:
    """The README's table, from a results file: both hubs side by side, median of the runs' p95s;
    then the capacity sweep, from the same file or the `sweeps` files given."""
    machine_info, summary = results["machine"], results["summary"]
    loads = [run["load_before"][0] for run in results["runs"]]
    started = datetime.strptime(results["started"], "%Y%m%dT%H%M%SZ").strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"Measured {started} by `benchmarks/surge.py` (results file `benchmarks/results/surge-{results['started']}.json`) "
        f"on {describe(machine_info)}; each scenario {results['repeat']} times, "
        f"the hubs taking turns, learners arriving within {results['ramp_s']:g} s, each learner "
        f"{results.get('learner_quota', '')}; 1-minute load average before a "
        f"scenario {min(loads, default=0):.1f} to {max(loads, default=0):.1f}."
        + (f" {results['notes']}" if results.get("notes") else ""),
        "",
        f"| learners | `{OURS_HUB}`: ran code | p95, median of runs (each run) | p50 | {PLAIN_HUB}: ran code | p95, median of runs (each run) | p50 |",
        "|---|---|---|---|---|---|---|",
    ]
    labels = {key: label for key, label, *_ in SCENARIOS}
    for key in results["scenarios"]:
        hubs = summary.get(key, {})
        cells = [labels[key]]
        for hub in (OURS_HUB, PLAIN_HUB):
            row = hubs.get(hub)
            if row is None:
                cells += ["-", "", ""]
            else:
                runs = ", ".join(f"{value:.1f}" for value in row["p95s"])
                cells += [
                    f"{row['ran_code']}/{row['learners']}",
                    f"{_seconds(row['median_p95'])} ({runs})"
                    if len(row["p95s"]) > 1
                    else _seconds(row["median_p95"]),
                    _seconds(row["median_p50"]),
                ]
        lines.append("| " + " | ".join(cells) + " |")
    admitted = sorted({line.split(" (")[0] for line in results.get("admission", [])})
    if admitted:
        lines += [
            "",
            "Our hub's admission (`hub.start_capacity: auto`), from its log: " + "; ".join(admitted) + ".",
        ]
    lines += cost_lines(results)
    for idle in results.get("idle", [])[:1]:
        lines += [
            "",
            f"Idle: {idle['servers']} running learner servers used {idle['cores_together']:.3f} of a core together over {idle['seconds']:g} s (cgroup CPU).",
        ]
    for source in [results, *(sweeps or [])]:
        lines += sweep_table(source, source is not results)
    lines += profile_lines(results) + cold_room_lines(results)
    return "\n".join(lines)


def profile_cpu(results: dict[str, Any]) -> tuple[float, float] | None:
    """CPU seconds of a learner's container until its server answers and until its first cell's
    output, from the run's start profile (`--profile`); None where it has none."""
    phases = results.get("start_profile", {}).get("phases", {})
    if "server answering" not in phases or "first cell output" not in phases:
        return None
    return phases["server answering"]["cpu_s"], phases["first cell output"]["cpu_s"]


def profile_lines(results: dict[str, Any]) -> list[str]:
    if not (measured := profile_cpu(results)):
        return []
    server, first_cell = measured
    return [
        "",
        f"Start profile of this run (`--profile`, `benchmarks/start_profile.py` at 1 CPU): a learner's "
        f"container has used {server:.2f} CPU s when its server answers, {first_cell:.2f} when its first "
        "cell's output arrives.",
    ]


def cold_room_lines(results: dict[str, Any]) -> list[str]:
    """Why the cold room's p95 is what it is: the CPU its learners cost against the machine's cores,
    worked out from the results (said only where the run measured both hubs' cost and a profile)."""
    ours, plain = (cold_room_bound(results, hub) for hub in (OURS_HUB, PLAIN_HUB))
    rows = results["summary"].get("30-cold", {})
    profiled = profile_cpu(results)
    if not (ours and plain and profiled and rows.get(OURS_HUB, {}).get("median_p95")):
        return []
    (cost, bound), plain_cost = ours, plain[0]
    server, first_cell = profiled
    cores, ramp = results["machine"]["cores"], results["ramp_s"]
    waits = arrival_order_waits(COLD_ROOM, ramp, cost, cores)
    ours_p95, plain_p95 = rows[OURS_HUB]["median_p95"], rows[PLAIN_HUB]["median_p95"]
    above = round(ours_p95, 1) - round(bound, 1)  # as the table and the cost line show them
    half_cost = cost_for_p95(COLD_ROOM, ramp, plain_p95 / 2 - above, cores)
    return [
        "",
        f"Why the cold room's p95 is what it is on {cores} cores: its last learners wait for the CPU of "
        f"everyone before them. Each learner of that room cost {cost:.2f} CPU s all in ({plain_cost:.2f} on "
        f"the plain hub), {first_cell:.2f} of it in the learner's container (server {server:.2f}, kernel "
        f"and first cell {first_cell - server:.2f}: the start profile above), the rest in the hub, Docker "
        f"and the benchmark's own clients. {COLD_ROOM} of them are {COLD_ROOM * cost:.0f} CPU s, "
        f"{COLD_ROOM * cost / cores:.0f} s of all {cores} cores, for learners who all arrived within "
        f"{ramp:g} s: admitted in arrival order with every core busy from the first arrival, the "
        f"{len(waits) - 2}th and {len(waits) - 1}th wait {waits[-3]:.1f} and {waits[-2]:.1f} s (a p95 of "
        f"{bound:.1f} s: the bound above and in the plot), and no order of admission makes the last "
        f"arrivals wait less than the work queued ahead of them. Our hub's p95 is {above:.1f} s above "
        f"that bound; the plain hub's p50 is {rows[PLAIN_HUB]['median_p50']:.1f} s against its p95 of "
        f"{plain_p95:.1f} s. Half the plain hub's p95 ({plain_p95 / 2:.1f} s) would need each learner "
        f"to cost about {half_cost:.1f} CPU s all in (a bound of {plain_p95 / 2 - above:.1f} s, plus "
        f"the {above:.1f} s our hub's p95 lies above its bound here)"
        + (
            f", less than the learner's container alone takes here ({first_cell:.2f})"
            if half_cost < first_cell
            else ""
        )
        + "; with more cores the bound falls with them.",
    ]


COLD_ROOM = next(size for key, _, size, *_ in SCENARIOS if key == "30-cold")


def cold_room_bound(results: dict[str, Any], hub: str) -> tuple[float, float] | None:
    """A hub's measured CPU a learner of the cold room (median of runs), and the least p95 that
    cost allows in arrival order on the results' machine; None where the run did not measure it."""
    cost = results["summary"].get("30-cold", {}).get(hub, {}).get("median_cpu_per_learner")
    if not cost:
        return None
    return cost, arrival_order_p95(COLD_ROOM, results["ramp_s"], cost, results["machine"]["cores"])


def cost_lines(results: dict[str, Any]) -> list[str]:
    """What a learner of the cold room cost all in, per hub, and the p95 that cost allows."""
    said = []
    for hub in (OURS_HUB, PLAIN_HUB):
        if measured := cold_room_bound(results, hub):
            cost, bound = measured
            said.append(
                f"{cost:.2f} CPU-s on the {hub} hub (in arrival order with every core busy throughout, "
                f"that cost allows a p95 no lower than {bound:.1f} s)"
            )
    if not said:
        return []
    return [
        "",
        f"All in, a learner of the cold room of {COLD_ROOM} cost (the host's CPU from the first arrival "
        f"to the last first cell, divided by {COLD_ROOM}, median of runs; the hub, Docker, server, kernel and this "
        "benchmark's clients): " + "; ".join(said) + ".",
    ]


def sweep_table(results: dict[str, Any], say_where: bool) -> list[str]:
    lines: list[str] = []
    sweep = [r for r in results["runs"] if r.get("sweep") is not None]
    if sweep and say_where:
        lines += [
            "",
            f"Capacity sweep of `benchmarks/results/surge-{results['started']}.json`"
            + (f" ({results['notes']})" if results.get("notes") else "")
            + ":",
        ]
    if sweep:
        lines += [
            "",
            "| starts admitted at once (30 cold, our hub) | "
            + " | ".join(str(r["sweep"]) for r in sweep)
            + " |",
        ]
        lines.append("|---" * (len(sweep) + 1) + "|")
        lines.append("| p95 login to first cell | " + " | ".join(_seconds(r["p95"]) for r in sweep) + " |")
        lines.append("| ran code | " + " | ".join(f"{r['ran_code']}/{r['learners']}" for r in sweep) + " |")
        lines.append(
            "| load average before | " + " | ".join(f"{r['load_before'][0]:.1f}" for r in sweep) + " |"
        )
    return lines


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = {key: label for key, label, *_ in SCENARIOS}
    keys = results["scenarios"]
    figure, axis = plt.subplots(figsize=(9, 4.5))
    width = 0.38
    for offset, hub in ((-width / 2, OURS_HUB), (width / 2, PLAIN_HUB)):
        rows = [results["summary"].get(key, {}).get(hub) for key in keys]
        p95 = [row["median_p95"] or 0 if row else 0 for row in rows]
        bars = axis.bar([i + offset for i in range(len(keys))], p95, width, label=hub)
        measured = cold_room_bound(results, hub)
        if "30-cold" in keys and measured:
            bound = measured[1]
            x = keys.index("30-cold") + offset
            axis.hlines(
                bound,
                x - width / 2,
                x + width / 2,
                colors="black",
                linestyles="dashed",
                label="least p95 the measured CPU a learner allows" if hub == OURS_HUB else "_nolegend_",
            )
            axis.annotate(
                f"{bound:.1f} s",
                (x, bound),
                ha="center",
                va="top",
                fontsize=7,
                bbox={"facecolor": "white", "alpha": 0.8, "pad": 1, "edgecolor": "none"},
            )
        for bar, row in zip(bars, rows, strict=True):
            if row:
                axis.annotate(
                    f"{row['ran_code']}/{row['learners']}",
                    (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center",
                    va="bottom",
                    fontsize=8,
                )
    axis.set_xticks(range(len(keys)), [labels[key] for key in keys], fontsize=8)
    axis.set_ylabel("p95 login to first cell (s), median of runs")
    axis.set_title(
        f"Surge on {results['machine']['cores']} cores, {results['started'][:8]} (label: learners who ran code)"
    )
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def readme_block(files: list[Path]) -> str:
    """The README's surge block from committed results files: the first one's figures, the others'
    capacity sweeps."""
    results, *sweeps = (json.loads(path.read_text()) for path in files)
    return readme_table(results, sweeps)


def write_readme(results_file: Path, sweep_files: list[Path]) -> None:
    files = [results_file, *sweep_files]
    command = readme_command("benchmarks/surge.py", files, ROOT)
    replace_readme_block(README, BLOCK, command, readme_block(files))
    plot(json.loads(results_file.read_text()), PLOT)
    print(f"README.md's surge table and {PLOT.relative_to(ROOT)} from {results_file}")


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
    run_benchmark(args, Console())


if __name__ == "__main__":
    main()
