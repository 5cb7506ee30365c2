"""What each lesson episode needs: every notebook run once in its own container of the learner
image (offline, a generous quota), at smoke size and, where asked, at full size; per episode the
container's peak memory (its memory cgroup: v2 memory.peak, v1 memory.max_usage_in_bytes), its
CPU-seconds (cgroup CPU accounting) and the wall time of the run. A fresh container per episode
makes the cgroup's peak that episode's alone. The container holds papermill's driver beside the
kernel, as a learner's holds the Jupyter server: the peak is what the learner's quota must hold.

    python benchmarks/episode_needs.py --image dlworkshop/learner:test [--size full --size smoke]
        [--repeat 3] [--parallel 2] [--finish-by HH:MM] [--episodes NAME ...]
    python benchmarks/episode_needs.py --metadata   # the notebooks' `needs` from the newest file

Each episode and size runs `--repeat` times (the first run of every episode first, in the order
`--episodes` gives, then the repetitions, the quickest first); its recorded peak is the largest of
its runs, and the margin the checks add on top of a peak is the widest spread between the runs of
one episode (`fitted_margin`). The file is written after every run, and records the machine's load
before and after each run and during the whole benchmark; what could not be measured says why.

The data are what the image holds: an image built by the tests (`--test-data`) holds the tests'
generated fixtures, smaller than the real datasets (its Keras hash override is mounted as the test
hub mounts it); the results file says which. Writes benchmarks/results/episode-needs-<UTC>.json.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import shutil
import statistics
import subprocess
import sys
import threading
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
# What the checks add on top of a measured peak is fitted to the file's own repeated runs: the
# largest relative spread (max - min) / min of a container's peak between runs of the same episode
# and size (allocator arenas, TensorFlow's thread pools, page cache that cgroup v1 counts), rounded
# up to a whole percent. An episode's recorded peak is the largest of its runs.
MIN_RUNS = 3  # runs an episode and size needs before its spread counts towards the margin
UNFITTED_MARGIN = 0.1  # used only while no episode has MIN_RUNS runs: an allowance, said so
TEST_DATA = (
    "the tests' generated fixtures (tests/fixtures/data.py) for CIFAR-10, Dollar Street 10 and the "
    "DenseNet121 weights, in the real files' formats and counts (CIFAR-10: 50000 + 10000 images, "
    "Dollar Street 10: 960 + 320 images at 64x64, DenseNet121 no-top: its real layer shapes) but "
    "generated pixels and weights, the canonical hosts being unreachable from the measuring machine; "
    "penguins and the weather CSVs are the real files (tests/data/real/SOURCES.md)"
)
LOAD_EVERY_S = 30


# Inside the container: run the notebook, then read the container's own cgroup.
RUNNER = r"""
import json, os, sys, threading, time, papermill
notebook, parameters = sys.argv[1], json.loads(sys.argv[2])
os.makedirs("/tmp/out", exist_ok=True)
# The resident part of the cgroup's memory (anonymous + mapped files), sampled: the peak the
# cgroup records also counts page cache, which a first run of an image is charged and the kernel
# reclaims before it kills.
v2 = os.path.exists("/sys/fs/cgroup/memory.stat")
stat_file = "/sys/fs/cgroup/memory.stat" if v2 else "/sys/fs/cgroup/memory/memory.stat"
keys = ("anon", "file_mapped") if v2 else ("total_rss", "total_mapped_file")
resident = [0]
def sample():
    while True:
        try:
            stat = dict(line.split() for line in open(stat_file))
            resident[0] = max(resident[0], sum(int(stat.get(k, 0)) for k in keys))
        except (OSError, ValueError):
            return
        time.sleep(0.2)
threading.Thread(target=sample, daemon=True).start()
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
                            "wall_seconds": round(wall, 1), "resident_peak_bytes": resident[0] or None, "error": error}))
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
    client: str, image: str, lesson: Lesson, size: str, extra: list[str], limit_s: int, name: str
) -> dict[str, Any]:
    from dlworkshop.contract import learner

    notebook = f"{learner.LESSONS_DIR}/{lesson.path.name}"
    # The image's own entrypoint sets the data roots, as in a learner's server.
    command = [client, "run", "--rm", "--name", name, "--network", "none", *QUOTA, *extra, image]
    command += ["python", "-c", RUNNER]
    command += [notebook, json.dumps(lesson.parameters_for(size))]  # type: ignore[arg-type]
    load = load_average()
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=limit_s)
    except subprocess.TimeoutExpired:
        # The client's end leaves the container running: remove it, or it holds the machine.
        subprocess.run([client, "rm", "-f", name], capture_output=True)
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
    return {**figures, "load_before": load, "load_after": load_average()}


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


class LoadSampler(threading.Thread):
    """The machine's one-minute load average every LOAD_EVERY_S seconds while the benchmark runs."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: list[float] = []
        self.halt = threading.Event()

    def run(self) -> None:
        while True:
            self.samples.append(load_average()[0])
            if self.halt.wait(LOAD_EVERY_S):
                return

    def stop(self) -> None:
        self.halt.set()

    def summary(self) -> dict[str, Any]:
        values = sorted(self.samples) or [0.0]
        return {
            "what": f"the machine's one-minute load average, sampled every {LOAD_EVERY_S} s during the run",
            "samples": len(self.samples),
            "min": values[0],
            "median": statistics.median(values),
            "max": values[-1],
        }


class Runs:
    """The runs still to do and those done, per (episode, size). The first run of every episode
    comes first (in the order given), then the repetitions, the quickest episodes' first, so the
    most episodes get their repetitions; a failed run cancels its episode's repetitions, and no
    run starts that would not end by `stop_at` (HH:MM, UTC; as long as its first run took)."""

    def __init__(self, lessons: list[Lesson], sizes: list[str], repeat: int, stop_at: str | None) -> None:
        self.order = [(lesson, size) for size in sizes for lesson in lessons]
        self.left = {(lesson.name, size): repeat for lesson, size in self.order}
        self.started = {key: 0 for key in self.left}
        self.runs: dict[tuple[str, str], list[dict[str, Any]]] = {key: [] for key in self.left}
        self.sizes = sizes
        self.repeat = repeat
        self.stop_at = stop_at
        self.lock = threading.Lock()

    def next(self) -> tuple[Lesson, str] | None:
        with self.lock:
            now = datetime.now(timezone.utc)
            waiting = [
                (i, lesson, size)
                for i, (lesson, size) in enumerate(self.order)
                if self.left[lesson.name, size] and self.ends_in_time(now, lesson.name, size)
            ]
            if not waiting:
                return None

            def key(item: tuple[int, Lesson, str]) -> tuple[int, int, float, int]:
                i, lesson, size = item
                done = [run["wall_seconds"] for run in self.runs[lesson.name, size] if "wall_seconds" in run]
                return (self.started[lesson.name, size], self.sizes.index(size), min(done, default=1e9), i)

            _, lesson, size = min(waiting, key=key)
            self.left[lesson.name, size] -= 1
            self.started[lesson.name, size] += 1
            return lesson, size

    def ends_in_time(self, now: datetime, name: str, size: str) -> bool:
        if not self.stop_at:
            return True
        took = [run["wall_seconds"] for run in self.runs[name, size] if "wall_seconds" in run]
        ends = now.timestamp() + (max(took) * 1.1 if took else 0)
        return datetime.fromtimestamp(ends, timezone.utc).strftime("%H:%M") < self.stop_at

    def done(self, name: str, size: str, figures: dict[str, Any], write: Any) -> None:
        with self.lock:
            self.runs[name, size].append(figures)
            if "missing" in figures:
                self.left[name, size] = 0
            write()

    def summary(self, name: str, size: str) -> dict[str, Any] | None:
        return summarize(self.runs.get((name, size), []), self.repeat, self.stop_at)

    def why_missing(self, name: str, size: str, asked: bool) -> str:
        if not asked:
            return "not measured in this run (time on a shared 2-core machine)"
        if self.started.get((name, size)):
            return "being measured"
        return (
            f"not measured: no run could end by the benchmark's stop time ({self.stop_at} UTC), "
            "the time of this session on a shared 2-core machine"
        )


def summarize(runs: list[dict[str, Any]], repeat: int, stop_at: str | None) -> dict[str, Any] | None:
    """An episode's figures at one size: the largest peak of its runs (what a quota must hold),
    the median CPU-seconds and wall time, each run, the peaks' spread, and why there are fewer
    runs than asked for where there are."""
    good = [run for run in runs if "missing" not in run]
    if not good:
        return {"missing": runs[0]["missing"], "load_before": runs[0]["load_before"]} if runs else None
    peaks = sorted(run["memory_bytes"] for run in good)
    resident = [run["resident_peak_bytes"] for run in good if run.get("resident_peak_bytes")]
    summary = {
        "memory_bytes": peaks[-1],
        "resident_peak_bytes": max(resident, default=None),
        "cpu_seconds": round(statistics.median(run["cpu_seconds"] for run in good), 1),
        "wall_seconds": round(statistics.median(run["wall_seconds"] for run in good), 1),
        "memory_spread": {
            "runs": len(peaks),
            "min": peaks[0],
            "median": int(statistics.median(peaks)),
            "max": peaks[-1],
            "fraction": round((peaks[-1] - peaks[0]) / peaks[0], 4),
        },
        "runs": runs,
    }
    if len(runs) < repeat:
        failed = [run["missing"] for run in runs if "missing" in run]
        summary["fewer_runs"] = (
            f"{len(runs)} of {repeat} runs: a run failed ({failed[0]}), so no more were started"
            if failed
            else f"{len(runs)} of {repeat} runs: no further run could end by the benchmark's stop time "
            f"({stop_at} UTC), the time of this session on a shared 2-core machine"
        )
    return summary


def refit(path: Path, stop_at: str | None) -> None:
    """A results file's summaries and margin computed again from its runs (what this script's
    summaries and margin are now; the runs themselves are left as measured)."""
    results = json.loads(path.read_text())
    for variants in results["episodes"].values():
        for size, figures in variants["cpu"].items():
            if "runs" in figures and "from" not in figures:
                variants["cpu"][size] = summarize(figures["runs"], results["repeat"], stop_at)
    results["finish_by"] = stop_at
    results["margin"] = fitted_margin(results["episodes"])
    path.write_text(json.dumps(results, indent=2) + "\n")


def fitted_margin(episodes: dict[str, Any]) -> dict[str, Any]:
    """The margin the checks add on top of a peak: the largest relative spread (max - min) / min
    of the peaks of an episode and size measured MIN_RUNS times or more, up to a whole percent."""
    spreads = {
        f"{name} {size}": (spread["max"] - spread["min"]) / spread["min"]
        for name, variants in episodes.items()
        for size, figures in variants["cpu"].items()
        if (spread := figures.get("memory_spread", {})).get("runs", 0) >= MIN_RUNS
    }
    if not spreads:
        return {
            "fraction": UNFITTED_MARGIN,
            "why": f"an allowance, not fitted: no episode was measured {MIN_RUNS} times in this file",
        }
    widest = max(spreads, key=lambda key: spreads[key])
    return {
        "fraction": math.ceil(spreads[widest] * 100) / 100,
        "why": f"the largest relative spread (max - min) / min of a container's peak between the runs of "
        f"one episode and size ({len(spreads)} measured at least {MIN_RUNS} times; widest: {widest}, "
        f"{spreads[widest]:.2%}), rounded up to a whole percent",
        "spreads": {key: round(value, 4) for key, value in spreads.items()},
    }


def carried(previous: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The newest file's measured figures, each saying which file it came from."""
    return {
        name: {
            size: {**f, "from": f.get("from", previous["file"])}
            for size, f in v["cpu"].items()
            if "missing" not in f
        }
        for name, v in previous["episodes"].items()
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
        "--repeat", type=int, default=1, help="runs per episode and size (the margin needs 3)"
    )
    parser.add_argument("--parallel", type=int, default=1, help="runs at once (each in its own container)")
    parser.add_argument("--finish-by", metavar="HH:MM", help="start no run that would not end by then (UTC)")
    parser.add_argument("--name-prefix", default="episode-needs", help="the benchmark containers' names")
    parser.add_argument(
        "--metadata", action="store_true", help="only write the notebooks' needs from the newest file"
    )
    parser.add_argument(
        "--refit", type=Path, metavar="FILE", help="only compute a results file's summaries and margin again"
    )
    args = parser.parse_args()
    if args.refit:
        refit(args.refit, args.finish_by)
        print(f"refitted {args.refit}; `--metadata` writes the notebooks' needs from the newest file")
        return
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
        data = TEST_DATA
    lessons = list_lessons(REPO / "lessons")
    if args.episodes:  # measured in the order given: the first are the first measured
        by_name = {lesson.name: lesson for lesson in lessons}
        chosen = [by_name[name] for name in args.episodes]
    else:
        chosen = lessons
    image = image_label(client, args.image)
    previous = latest_results(RESULTS) if args.keep else None
    kept = carried(previous) if previous and previous["image"]["id"] == image["id"] else {}
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"episode-needs-{stamp}.json"
    header = {
        "benchmark": "episode_needs",
        "date": stamp,
        "machine": machine(),
        "load_at_start": load_average(),
        "image": image,
        "data": data,
        "quota": " ".join([*QUOTA, f"--cpus {args.cpus}"]),
        "repeat": args.repeat,
        "parallel": args.parallel,
        "finish_by": args.finish_by,
    }
    runner = Runs(chosen, sizes, args.repeat, args.finish_by)
    sampler = LoadSampler()
    sampler.start()

    def write() -> None:
        episodes = {
            lesson.name: {
                "cpu": {
                    size: runner.summary(lesson.name, size)
                    or kept.get(lesson.name, {}).get(size)
                    or {"missing": runner.why_missing(lesson.name, size, size in sizes and lesson in chosen)}
                    for size in ("smoke", "full")
                },
                "gpu": {"missing": "no GPU on the measuring machine"},
            }
            for lesson in lessons
        }
        result = {
            **header,
            "load_during": sampler.summary(),
            "margin": fitted_margin(episodes),
            "episodes": episodes,
        }
        path.write_text(json.dumps(result, indent=2) + "\n")

    count = iter(range(1, 10**6))  # each container's own name: a run past its limit is removed by it

    def work() -> None:
        while (task := runner.next()) is not None:
            lesson, size = task
            name = f"{args.name_prefix}-{lesson.name}-{size}-{next(count)}"
            print(f"{lesson.name} at {size} size ...", flush=True)
            run_options = [*extra, f"--cpus={args.cpus}", "-e", f"CPU_LIMIT={args.cpus}"]
            figures = measure(client, args.image, lesson, size, run_options, args.limit_s, name)
            print(f"  {lesson.name} {size}: {figures}", flush=True)
            runner.done(lesson.name, size, figures, write)

    workers = [threading.Thread(target=work) for _ in range(args.parallel)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    sampler.stop()
    write()
    print(f"wrote {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
