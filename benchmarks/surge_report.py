"""The surge benchmark's results (benchmarks/surge.py): the summary of its runs, the bound the
machine's cores put on a cold room, and the README's table and plot written from a results file.
Not a test."""

from __future__ import annotations

import json
import statistics
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from dlworkshop.clients import loadtest

sys.path.insert(0, str(Path(__file__).parent))
from machine import describe, readme_command, replace_readme_block  # what every results file records

ROOT = Path(__file__).resolve().parent.parent


RESULTS = Path(__file__).parent / "results"


README = ROOT / "README.md"


PLOT = ROOT / "docs" / "surge.png"


BLOCK = "surge table"  # the README's generated block (benchmarks/machine.py)


OURS_HUB, PLAIN_HUB = "dlworkshop up", "plain DockerSpawner"


# (key, label, learners, pre-warmed, tries): arriving within --ramp seconds (a single learner at once).
SCENARIOS = [
    ("1", "1 learner (3 tries)", 1, False, 3),
    ("10", "10 learners", 10, False, 1),
    ("30-cold", "30 learners, cold", 30, False, 1),
    ("30-prewarmed", "30 learners, pre-warmed seats (all running)", 30, True, 1),
]


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


def summarise(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per scenario and hub: the median of the runs' p95s (and p50s), and who ran code."""
    summary: dict[str, dict[str, Any]] = {}
    for run in runs:
        if run.get("sweep") is not None:
            continue
        row = summary.setdefault(run["scenario"], {}).setdefault(
            run["hub"],
            {"p95s": [], "p50s": [], "cpu_per_learner": [], "bounds": [], "ran_code": 0, "learners": 0},
        )
        if run["p95"] is not None:
            row["p95s"].append(run["p95"])
            row["p50s"].append(run["p50"])
        if run.get("cpu_bound_p95") is not None:
            row["bounds"].append(run["cpu_bound_p95"])
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
            row["median_bound"] = round(statistics.median(row["bounds"]), 2) if row["bounds"] else None
    return summary


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
        f"| learners | `{OURS_HUB}`: ran code | p95, median of runs (each run) | CPU bound | p50 | {PLAIN_HUB}: ran code | p95, median of runs (each run) | CPU bound | p50 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    labels = {key: label for key, label, *_ in SCENARIOS}
    for key in results["scenarios"]:
        hubs = summary.get(key, {})
        cells = [labels[key]]
        for hub in (OURS_HUB, PLAIN_HUB):
            row = hubs.get(hub)
            if row is None:
                cells += ["-", "", "", ""]
            else:
                runs = ", ".join(f"{value:.1f}" for value in row["p95s"])
                cells += [
                    f"{row['ran_code']}/{row['learners']}",
                    f"{_seconds(row['median_p95'])} ({runs})"
                    if len(row["p95s"]) > 1
                    else _seconds(row["median_p95"]),
                    _seconds(row.get("median_bound")),
                    _seconds(row["median_p50"]),
                ]
        lines.append("| " + " | ".join(cells) + " |")
    admitted = sorted({line.split(" (")[0] for line in results.get("admission", [])})
    if admitted:
        lines += [
            "",
            "Our hub's admission (`hub.start_capacity: auto`), from its log: " + "; ".join(admitted) + ".",
        ]
    lines += pair_lines(results) + cost_lines(results)
    for idle in results.get("idle", [])[:1]:
        lines += [
            "",
            f"Idle: {idle['servers']} running learner servers used {idle['cores_together']:.3f} of a core together over {idle['seconds']:g} s (cgroup CPU).",
        ]
    for source in [results, *(sweeps or [])]:
        lines += sweep_table(source, source is not results)
    lines += sweep_best_lines(results, sweeps or [])
    lines += profile_lines(results) + arrival_lines(results) + cold_room_lines(results)
    return "\n".join(lines)


def pairs(results: dict[str, Any], scenario: str = "30-cold") -> list[tuple[int, float, float, str]]:
    """The interleaved pairs of a scenario: (repeat, our p95, the plain hub's p95, which went first)."""
    found: dict[int, dict[str, Any]] = {}
    for run in results["runs"]:
        if run.get("sweep") is None and run["scenario"] == scenario and run["p95"] is not None:
            found.setdefault(run["repeat"], {})[run["hub"]] = run
    return [
        (
            repeat,
            hubs[OURS_HUB]["p95"],
            hubs[PLAIN_HUB]["p95"],
            OURS_HUB if hubs[OURS_HUB].get("first", repeat % 2 == 0) else PLAIN_HUB,
        )
        for repeat, hubs in sorted(found.items())
        if OURS_HUB in hubs and PLAIN_HUB in hubs
    ]


def pair_lines(results: dict[str, Any]) -> list[str]:
    """The cold room's pairs: ours against the plain hub in each, and the median ratio."""
    found = pairs(results)
    if not found:
        return []
    ratios = [ours / plain for _, ours, plain, _ in found]
    each = "; ".join(
        f"pair {repeat + 1} ({first} first): {ours:.1f} s against {plain:.1f} s ({ours / plain:.2f}x)"
        for repeat, ours, plain, first in found
    )
    worse = sum(1 for ratio in ratios if ratio > 1)
    return [
        "",
        f"The cold room of {COLD_ROOM}, pair by pair (p95, ours against the plain hub): {each}; median "
        f"{statistics.median(ratios):.2f}x, ours worse in {worse} of {len(found)} pairs.",
    ]


def sweep_best_lines(results: dict[str, Any], sweeps: list[dict[str, Any]]) -> list[str]:
    """Where the capacity auto chose lies in the sweep: its p95 against the best fixed one's."""
    sweep = [r for r in results["runs"] if r.get("sweep") is not None and r["p95"] is not None]
    auto = [r for r in sweep if r["sweep"] == "auto"]
    fixed = [r for r in sweep if r["sweep"] != "auto"]
    if not auto or not fixed:
        return []
    best = min(fixed, key=lambda r: r["p95"])
    chose = auto[0].get("admission", [])
    return [
        "",
        f"The capacity our hub chose (auto{': ' + chose[-1] if chose else ''}) gave a p95 of "
        f"{auto[0]['p95']:.1f} s; the best fixed capacity of the sweep, {best['sweep']}, {best['p95']:.1f} s.",
    ]


def arrival_lines(results: dict[str, Any]) -> list[str]:
    """One learner's arrival phase by phase on each hub (`--profile`), CPU and wall seconds."""
    profile = results.get("arrival_profile")
    if not profile:
        return []
    hubs = [hub for hub in (OURS_HUB, PLAIN_HUB) if hub in profile]
    if not hubs:
        return []
    samples = min(row["samples"] for hub in hubs for row in profile[hub].values())
    lines = [
        "",
        f"One learner's arrival, phase by phase, alone on a quiet machine (`--profile`, median of "
        f"{samples} per hub, the hubs taking turns); CPU s (wall s):",
        "",
        "| phase | " + " | ".join(hubs) + " |",
        "|---" * (len(hubs) + 1) + "|",
    ]
    for phase in profile[hubs[0]]:
        cells = []
        for hub in hubs:
            row = profile[hub].get(phase)
            cells.append(f"{row['cpu_s']:.2f} ({row['wall_s']:.2f})" if row else "-")
        lines.append(f"| {phase} | " + " | ".join(cells) + " |")
    return lines


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
