"""The load test against the workshop hub on the Slurm test cluster, with its numbers kept.

Brings up the test cluster (login + two GPU nodes, tests/fixtures/slurm.py), deploys the hub with
`dlworkshop deploy` and runs `dlworkshop loadtest --learners 6` against it through the TLS endpoint,
by running the e2e module's load-test test (tests/slurm/test_slurm_hub.py); then writes
benchmarks/slurm_loadtest.results.json: the date, the machine, its load before and after, and the
load test's per-step p50/p95/max and how many learners ran code on which nodes.

    python benchmarks/slurm_loadtest.py
    python benchmarks/slurm_loadtest.py --readme benchmarks/slurm_loadtest.results.json
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from machine import readme_command, relative, replace_readme_block  # the README's generated blocks

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
BLOCK = "slurm load test"
RESULTS = Path(__file__).with_name("slurm_loadtest.results.json")
REPORT_ENV = "DLWORKSHOP_SLURM_LOADTEST_REPORT"


def machine() -> dict[str, object]:
    memory_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(memory_kb / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def readme_table(results: dict[str, Any], path: str) -> str:
    """The README's lines on the Slurm load test, from its results file."""
    machine_info, steps = results["machine"], results["steps_seconds"]

    def p50_p95(step: str) -> str:
        return f"{steps[step]['p50']:.1f} s / {steps[step]['p95']:.1f} s"

    return "\n".join(
        [
            f"Measured {results['date'][:16].replace('T', ' ')} UTC by `benchmarks/slurm_loadtest.py` "
            f"(results file `{path}`) on {machine_info['cpus']} CPUs, {machine_info['memory_gib']:g} GiB, "
            f"running the cluster ({results['cluster']}) and the control node; 1-minute load average "
            f"{results['load_average_before'][0]:g} before, {results['load_average_after'][0]:g} after: "
            f"`dlworkshop loadtest --learners {results['learners']} --ramp {results['ramp_seconds']:g}`, "
            f"{results['settings']}.",
            "",
            "| learners | ran code | nodes | login to first cell p50 / p95 | of which the server's start "
            "(Slurm job to JupyterLab answering) p50 / p95 |",
            "|---|---|---|---|---|",
            f"| {results['learners']} | {results['ran_code']}/{results['learners']} | "
            f"{', '.join(results['nodes'])} | {p50_p95('login_to_first_cell')} | {p50_p95('spawn')} |",
        ]
    )


def readme_block(files: list[Path]) -> str:
    (results_file,) = files
    return readme_table(json.loads(results_file.read_text()), relative(results_file, REPO))


def main() -> int:
    if sys.argv[1:2] == ["--readme"]:
        files = [Path(name) for name in sys.argv[2:]]
        replace_readme_block(
            README, BLOCK, readme_command("benchmarks/slurm_loadtest.py", files, REPO), readme_block(files)
        )
        return 0
    with tempfile.TemporaryDirectory(prefix="dlw-slurm-loadtest-") as scratch:
        report = Path(scratch) / "load"
        load_before = os.getloadavg()
        started = datetime.datetime.now(datetime.timezone.utc)
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "tests/slurm/test_slurm_hub.py", "-k", "load_test",
             "-p", "no:cacheprovider", "-q"],
            cwd=REPO, env={**os.environ, REPORT_ENV: str(report)},
        )  # fmt: skip
        if result.returncode != 0:
            print("the load test failed; no results written", file=sys.stderr)
            return 1
        data = json.loads((report / "loadtest.json").read_text())
        results = {
            "date": started.isoformat(timespec="seconds"),
            "machine": machine(),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
            "cluster": "tests/fixtures/slurm.py: login + node1 + node2 (containers on this machine), "
            "2 fake GPUs per node, shards",
            "settings": "shared-code login, 0.5 CPU (1 CPU in Slurm) and 900M per learner, "
            "no GPU (policy none), start_capacity 4, through the TLS endpoint",
            "learners": data["learners"],
            "ramp_seconds": data["ramp_seconds"],
            "ran_code": data["ran_code"],
            "nodes": json.loads((report / "nodes.json").read_text()),
            "steps_seconds": data["summary"],
        }
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
