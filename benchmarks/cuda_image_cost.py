"""What the CUDA learner image costs a CI run: its build time on this machine (the base image and the
fetched data already there, as in a run, where the CPU image's fixture builds them first), its size,
and the disk it takes under Docker's data root. One results file per run,
benchmarks/results/cuda-image-cost-<UTC time>.json, with the machine; the README's test section
quotes it. Not a test: numbers depend on the machine and on what the layer cache already holds
(`cache_before` records that).

    python benchmarks/cuda_image_cost.py [--tag dlworkshop/learner:test-cuda]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dlworkshop.image.base import build_base
from dlworkshop.image.build import build_learner_image
from dlworkshop.image.docker import require_engine

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from machine import load_average, machine  # what every results file records

RESULTS = Path(__file__).parent / "results"
DOCKER_ROOT = Path("/var/lib/docker")


def free_bytes() -> int:
    root = DOCKER_ROOT if DOCKER_ROOT.exists() else Path("/")
    return shutil.disk_usage(root).free


def docker_df(client: str) -> str:
    return subprocess.run([client, "system", "df"], capture_output=True, text=True).stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tag", default="dlworkshop/learner:test-cuda")
    args = parser.parse_args()
    from tests.fixtures.data import build_fixture_mirror

    client = require_engine()
    started = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    base_started = time.monotonic()
    base = build_base()
    base_seconds = time.monotonic() - base_started
    mirror, registry = build_fixture_mirror()
    cache_before, free_before, load_before = docker_df(client), free_bytes(), load_average()
    build_started = time.monotonic()
    build_learner_image(args.tag, "cuda", base_image=base, data_mirror=str(mirror), registry=registry)
    build_seconds = time.monotonic() - build_started
    size = subprocess.run(
        [client, "image", "inspect", "--format", "{{.Size}}", args.tag], capture_output=True, text=True
    ).stdout.strip()
    result: dict[str, Any] = {
        "started": started,
        "machine": machine(),
        "base_image": {"reference": base, "seconds_to_build_or_find": round(base_seconds, 1)},
        "cache_before": cache_before,
        "load_before": load_before,
        "cuda_image": {
            "reference": args.tag,
            "build_seconds": round(build_seconds, 1),
            "size_bytes": int(size),
        },
        "docker_root_free_bytes": {"before": free_before, "after": free_bytes()},
        "cache_after": docker_df(client),
    }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"cuda-image-cost-{started}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"CUDA image built in {build_seconds:.0f} s, {int(size) / 1e9:.2f} GB; written {out}")


if __name__ == "__main__":
    main()
