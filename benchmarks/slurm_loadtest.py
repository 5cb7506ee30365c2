"""The load test against the workshop hub on the Slurm test cluster, with its numbers kept.

Brings up the test cluster (login + two GPU nodes, tests/fixtures/slurm.py), deploys the hub with
`dlworkshop deploy` and runs `dlworkshop loadtest --learners 6` against it through the TLS endpoint,
by running the e2e module's load-test test (tests/slurm/test_slurm_hub.py); then writes
benchmarks/slurm_loadtest.results.json: the date, the machine, its load before and after, and the
load test's per-step p50/p95/max and how many learners ran code on which nodes.

    python benchmarks/slurm_loadtest.py        # about 10 minutes on a 2-core machine
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

REPO = Path(__file__).resolve().parents[1]
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


def main() -> int:
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
