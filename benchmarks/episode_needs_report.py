"""The README's table of what each episode needs, from a committed episode-needs results file
(benchmarks/episode_needs.py measures; this only writes):

    python benchmarks/episode_needs_report.py --readme benchmarks/results/episode-needs-<UTC>.json
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from dlworkshop.needs import EpisodeNeed

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BLOCK = "episode needs"
sys.path.insert(0, str(Path(__file__).parent))
from machine import describe, readme_command, replace_readme_block  # noqa: E402


def mib(size: int) -> str:
    return f"{size / 2**20:.0f} MiB"


def peak_cell(figures: dict[str, Any]) -> str:
    """`900 MiB (3 runs: 880 / 890 / 900 MiB)`, or why it was not measured."""
    if "memory_bytes" not in figures:
        why = figures.get("missing", "no figure")
        return why if why.startswith("not measured") else f"not measured: {why}"
    spread = figures.get("memory_spread")
    if not spread or spread["runs"] < 2:
        return f"{mib(figures['memory_bytes'])} (1 run)"
    return (
        f"{mib(figures['memory_bytes'])} ({spread['runs']} runs: {spread['min'] / 2**20:.0f} / "
        f"{spread['median'] / 2**20:.0f} / {spread['max'] / 2**20:.0f} MiB)"
    )


def row(name: str, variants: dict[str, Any], margin: float) -> str:
    full, smoke = variants["cpu"]["full"], variants["cpu"]["smoke"]
    used = full if "memory_bytes" in full else smoke
    if "memory_bytes" in used:
        size = "full" if used is full else "smoke"
        need = EpisodeNeed(name, used["memory_bytes"], used["cpu_seconds"], size, margin)
        quota = f"{need.quota_bytes // 2**20}M" + ("" if used is full else " (smoke size)")
    else:
        quota = "-"
    figures = (
        [f"{full['cpu_seconds']:g}", f"{full['wall_seconds']:.0f} s"]
        if "memory_bytes" in full
        else ["-", "-"]
    )
    return f"| {name} | {peak_cell(full)} | {quota} | {' | '.join(figures)} | {peak_cell(smoke)} |"


def readme_table(results: dict[str, Any], file: str) -> str:
    date = datetime.strptime(results["date"], "%Y%m%dT%H%M%SZ").strftime("%Y-%m-%d %H:%M UTC")
    load = results.get("load_during")
    loaded = (
        f", beside other work on the machine (1-minute load average {load['min']:g} to {load['max']:g} "
        "during the run)"
        if load
        else ""
    )
    margin = results["margin"]
    image = results["image"]
    lines = [
        f"Measured {date} by `benchmarks/episode_needs.py` (results file `{file}`) on "
        f"{describe(results['machine'])}, in the CPU learner image built by the tests (revision "
        f"{(image.get('revision') or '?')[:7]}), each run in a container of its own ({results['quota']}, "
        f"no network), {results.get('parallel', 1)} runs at a time{loaded}. Data: {results['data']}.",
        "",
        "| episode | peak memory, full size (runs: min / median / max) | quota it needs (peak + margin) "
        "| CPU-seconds, full | wall, full | peak memory, smoke size |",
        "|---|---|---|---|---|---|",
        *(row(name, variants, margin["fraction"]) for name, variants in results["episodes"].items()),
        "",
        f"The margin, {margin['fraction']:.0%}: {margin['why']}. GPU figures: not measured (no GPU on "
        "the measuring machine). `dlworkshop check`, `up`, `render` and `deploy` refuse a "
        "`resources.memory` below an episode's peak and warn within the margin; `check` sizes the "
        "room from these figures.",
    ]
    return "\n".join(lines)


def readme_block(files: list[Path]) -> str:
    """The README's episode-needs block from a committed results file."""
    (results_file,) = files
    relative = results_file.resolve().relative_to(ROOT).as_posix()
    return readme_table(json.loads(results_file.read_text()), relative)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readme", type=Path, metavar="RESULTS", required=True)
    args = parser.parse_args()
    command = readme_command("benchmarks/episode_needs_report.py", [args.readme], ROOT)
    replace_readme_block(README, BLOCK, command, readme_block([args.readme]))
    print(f"README.md's episode needs from {args.readme}")


if __name__ == "__main__":
    main()
