"""What each lesson episode needs: every notebook run once in its own container of the learner
image (offline, a generous quota), at smoke size and, where asked, at full size; per episode the
container's peak memory (its memory cgroup: v2 memory.peak, v1 memory.max_usage_in_bytes), its
CPU-seconds (cgroup CPU accounting) and the wall time of the run. A fresh container per episode
makes the cgroup's peak that episode's alone. The container holds papermill's driver beside the
kernel, as a learner's holds the Jupyter server: the peak is what the learner's quota must hold.

    python benchmarks/episode_needs.py --image dlworkshop/learner:test [--size smoke --size full]
    python benchmarks/episode_needs.py --metadata   # the notebooks' `needs` from the newest file

The data are what the image holds: an image built by the tests (`--test-data`) holds the tests'
generated fixtures, smaller than the real datasets (its Keras hash override is mounted as the test
hub mounts it); the results file says which. Writes benchmarks/results/episode-needs-<UTC>.json.
"""

from __future__ import annotations

import argparse
import importlib
import json
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from dlworkshop.lessons import Lesson, list_lessons
from dlworkshop.needs import latest_results, write_needs_metadata

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).parent))
from machine import load_average, machine  # noqa: E402 - what every results file records

RESULTS = REPO / "benchmarks" / "results"
# Generous memory: the peak is measured, not capped. A lower CPU weight than other containers: the
# benchmark shares its machine, and the figures it takes (memory, CPU-seconds) do not depend on it.
QUOTA = ("--memory", "8g", "--cpu-shares", "256")
# What the checks add on top of a measured peak, recorded with the figures so the rule reads it
# from the file: a container's peak varies between runs of the same notebook (allocator arenas,
# TensorFlow's thread pools, page cache that cgroup v1 counts) and a learner's server holds a little
# more than papermill's driver (the terminal, JupyterLab's extensions).
MARGIN = {
    "fraction": 0.1,
    "why": "run-to-run spread of a container's peak and the Jupyter server's share beside the kernel; "
    "an allowance, not yet fitted to repeated runs (one run per episode and size here)",
}
# Inside the container: run the notebook, then read the container's own cgroup.
RUNNER = r"""
import json, os, sys, time, papermill
notebook, parameters = sys.argv[1], json.loads(sys.argv[2])
os.makedirs("/tmp/out", exist_ok=True)
started = time.monotonic()
error = None
try:
    papermill.execute_notebook(notebook, "/tmp/out/run.ipynb", parameters={**parameters, "output_dir": "/tmp/out"},
                               cwd="/tmp/out", progress_bar=False, log_output=False)
except Exception as exc:
    error = f"{type(exc).__name__}: {str(exc)[-300:]}"
wall = time.monotonic() - started
def read(path):
    try:
        return open(path).read().strip()
    except OSError:
        return None
if os.path.exists("/sys/fs/cgroup/memory.peak"):
    peak = read("/sys/fs/cgroup/memory.peak")
    usage = [l.split()[1] for l in (read("/sys/fs/cgroup/cpu.stat") or "").splitlines() if l.startswith("usage_usec ")]
    cpu = int(usage[0]) / 1e6 if usage else None
else:
    peak = read("/sys/fs/cgroup/memory/memory.max_usage_in_bytes")
    nanos = read("/sys/fs/cgroup/cpuacct/cpuacct.usage") or read("/sys/fs/cgroup/cpu,cpuacct/cpuacct.usage")
    cpu = int(nanos) / 1e9 if nanos else None
print("NEEDS " + json.dumps({"memory_bytes": int(peak) if peak else None, "cpu_seconds": round(cpu, 1) if cpu else None,
                            "wall_seconds": round(wall, 1), "error": error}))
"""


def test_data_options(mirror: Path) -> list[str]:
    """Mounts and variables the test hub gives learners so Keras accepts the generated fixtures."""
    data, hub = importlib.import_module("tests.fixtures.data"), importlib.import_module("tests.fixtures.hub")
    return [
        "-v",
        f"{data.KERAS_OVERRIDE_DIR}:{hub.KERAS_OVERRIDE_MOUNT}:ro",
        "-e",
        f"PYTHONPATH={hub.KERAS_OVERRIDE_MOUNT}",
        "-e",
        f"DLWORKSHOP_TEST_KERAS_HASHES={json.dumps(data.keras_hash_overrides(mirror))}",
    ]


def measure(
    client: str, image: str, lesson: Lesson, size: str, extra: list[str], limit_s: int
) -> dict[str, Any]:
    from dlworkshop.contract import learner

    notebook = f"{learner.LESSONS_DIR}/{lesson.path.name}"
    # The image's own entrypoint sets the data roots, as in a learner's server.
    command = [client, "run", "--rm", "--network", "none", *QUOTA, *extra, image, "python", "-c", RUNNER]
    command += [notebook, json.dumps(lesson.parameters_for(size))]  # type: ignore[arg-type]
    load = load_average()
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=limit_s)
    except subprocess.TimeoutExpired:
        return {"missing": f"not finished within {limit_s} s on this machine", "load_before": load}
    lines = [line for line in out.stdout.splitlines() if line.startswith("NEEDS ")]
    if not lines:
        return {
            "missing": f"the run gave no figures: {(out.stderr or out.stdout)[-300:]}",
            "load_before": load,
        }
    figures = json.loads(lines[-1].removeprefix("NEEDS "))
    error = figures.pop("error")
    if error:
        return {"missing": f"the notebook failed in the benchmark container: {error}", "load_before": load}
    return {**figures, "load_before": load}


def image_label(client: str, image: str) -> dict[str, Any]:
    inspected = json.loads(
        subprocess.run(
            [client, "image", "inspect", "--format", "{{json .}}", image], capture_output=True, text=True
        ).stdout
    )
    labels = inspected.get("Config", {}).get("Labels") or {}
    return {
        "reference": image,
        "id": inspected["Id"],
        "revision": labels.get("org.opencontainers.image.revision"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--image", default="dlworkshop/learner:test")
    parser.add_argument("--size", action="append", choices=["smoke", "full"])
    parser.add_argument("--episodes", nargs="*", help="episode names (default: every one)")
    parser.add_argument(
        "--test-data",
        type=Path,
        metavar="MIRROR",
        help="the image holds the tests' generated fixtures, built from this mirror folder (their hashes "
        "differ per generation: give the one the image was built from)",
    )
    parser.add_argument("--cpus", default="1", help="the CPU quota of each run (a learner's)")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="carry the newest file's figures over for what this run does not measure",
    )
    parser.add_argument("--limit-s", type=int, default=900, help="longest run per episode and size")
    parser.add_argument(
        "--metadata", action="store_true", help="only write the notebooks' needs from the newest file"
    )
    args = parser.parse_args()
    if not args.metadata:
        run(args)
    results = latest_results(RESULTS)
    if results is None:
        raise SystemExit("no benchmarks/results/episode-needs-*.json yet: run this script with --image first")
    write_needs_metadata(REPO / "lessons", results)
    print(f"lessons' needs metadata written from {results['file']}")


def run(args: argparse.Namespace) -> None:
    client = shutil.which("docker") or "docker"
    sizes = args.size or ["smoke"]
    extra: list[str] = []
    data = "the image's own datasets (the lesson's real files)"
    if args.test_data:
        sys.path.insert(0, str(REPO))  # the tests' fixtures: their generated data and Keras override
        extra = test_data_options(args.test_data)
        data = (
            "the tests' generated fixtures (tests/fixtures/data.py), far smaller than the real datasets: "
            "full-size figures here understate what the real data needs"
        )
    episodes: dict[str, Any] = {}
    previous = latest_results(RESULTS) if args.keep else None
    # Carried over only from a run of the same image (its figures say where they came from).
    kept: dict[str, Any] = {}
    if previous and previous["image"]["id"] == image_label(client, args.image)["id"]:
        kept = {
            name: {
                "cpu": {
                    size: {**f, "from": f.get("from", previous["file"])} if "missing" not in f else f
                    for size, f in v["cpu"].items()
                }
            }
            for name, v in previous["episodes"].items()
        }
    for lesson in list_lessons(REPO / "lessons"):
        chosen = not args.episodes or lesson.name in args.episodes
        figures: dict[str, Any] = {}
        for size in ("smoke", "full"):
            if chosen and size in sizes:
                print(f"{lesson.name} at {size} size ...", flush=True)
                run_options = [*extra, f"--cpus={args.cpus}", "-e", f"CPU_LIMIT={args.cpus}"]
                figures[size] = measure(client, args.image, lesson, size, run_options, args.limit_s)
                print(f"  {figures[size]}", flush=True)
            elif size in kept.get(lesson.name, {}).get("cpu", {}):
                figures[size] = kept[lesson.name]["cpu"][size]
            else:
                figures[size] = {"missing": "not measured in this run (time on a shared 2-core machine)"}
        episodes[lesson.name] = {"cpu": figures, "gpu": {"missing": "no GPU on the measuring machine"}}
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"episode-needs-{stamp}.json"
    result = {
        "benchmark": "episode_needs",
        "date": stamp,
        "machine": machine(),
        "load_at_start": load_average(),
        "image": image_label(client, args.image),
        "data": data,
        "quota": " ".join([*QUOTA, f"--cpus {args.cpus}"]),
        "margin": MARGIN,
        "episodes": episodes,
    }
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
