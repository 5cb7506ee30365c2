"""`scripts/gpu-check`: on a machine with NVIDIA GPUs and the NVIDIA container toolkit, prove the
GPU quotas end to end with the CUDA learner image: a hub with `resources.gpu.policy: shared` (two
learners on one GPU), then `whole`; each learner's container sees only its GPUs, the per-learner
memory cap holds, episodes 4 and 5 train within their GPU budgets, the smoke test's GPU check
passes. Results go to benchmarks/results/gpu-check-<UTC time>.json with the machine and each GPU.

    scripts/gpu-check [--dry-run] [--image dlworkshop/learner:gpu-check] [--archive FILE] [--port 8780]

What counts as a pass, and which checks these GPUs allow, is decided in dlworkshop.clients.gpu_check.plan.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import secrets
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dlworkshop.clients.gpu_check import plan as gpu_plan

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "benchmarks" / "results"
PREFIX = "dlworkshop-gpu-check"

# In a learner's kernel: the GPUs its container sees (nvidia-smi, which the NVIDIA toolkit mounts
# with the utility capability, else /proc), and TensorFlow's memory limit for each.
PROBE = """
import json, os, subprocess, tensorflow as tf
try:
    listed = subprocess.run(["nvidia-smi", "--query-gpu=uuid", "--format=csv,noheader"],
                            capture_output=True, text=True, timeout=60).stdout.split()
except OSError:  # no nvidia-smi mounted: the driver's own list of this container's GPUs
    import glob
    listed = [line.split(":", 1)[1].strip() for info in glob.glob("/proc/driver/nvidia/gpus/*/information")
              for line in open(info) if line.startswith("GPU UUID")]
gpus = tf.config.list_physical_devices("GPU")
limits = [c.memory_limit for g in gpus for c in (tf.config.get_logical_device_configuration(g) or [])]
print(json.dumps({"uuids": listed, "gpus": len(gpus), "limits_mb": limits,
                  "visible": os.environ.get("NVIDIA_VISIBLE_DEVICES"),
                  "cap_env": os.environ.get("DLWORKSHOP_GPU_MEMORY_MB")}))
"""
HOLD = """
import tensorflow as tf
with tf.device("/GPU:0"):
    held = tf.ones(({mb} * 1024 * 1024 // 4,), dtype=tf.float32)
print("held", float(held[0]))
"""
ALLOCATE = """
import tensorflow as tf
try:
    with tf.device("/GPU:0"):
        extra = tf.ones(({mb} * 1024 * 1024 // 4,), dtype=tf.float32)
        print("ALLOCATED", float(tf.reduce_sum(extra[:1])))
    del extra
    print("RESULT ok")
except tf.errors.ResourceExhaustedError:
    print("RESULT ResourceExhaustedError")
except Exception as exc:
    print("RESULT", type(exc).__name__)
"""


def say(text: str) -> None:
    print(text, flush=True)


def query_gpus() -> list[gpu_plan.Gpu]:
    try:
        result = subprocess.run(gpu_plan.NVIDIA_SMI_QUERY, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return gpu_plan.parse_gpus(result.stdout) if result.returncode == 0 else []


def dlworkshop(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dlworkshop", *args], capture_output=True, text=True)


@contextlib.contextmanager
def hub(config: Path, port: int) -> Iterator[str]:
    """`dlworkshop up` of `config`, and `down --purge` after, even on failure."""
    dlworkshop("down", "-c", str(config), "--purge", "--force")
    say(f"  dlworkshop up -c {config}")
    started = dlworkshop("up", "-c", str(config))
    if started.returncode != 0:
        raise SystemExit(f"dlworkshop up failed:\n{started.stdout[-2000:]}{started.stderr[-3000:]}")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        dlworkshop("down", "-c", str(config), "--purge", "--force")


class Learner:
    """A learner's server on the hub and one kernel in it."""

    def __init__(self, url: str, name: str, access_code: str) -> None:
        from dlworkshop.clients.smoke.jupyter import JupyterServer
        from dlworkshop.hubclient import HubClient

        self.name = name
        self.client = HubClient(url)
        self.client.login(name, access_code, secrets.token_hex(8))
        token = self.client.create_token(name, "dlworkshop GPU check")
        self.client.use_token(token)
        self.client.spawn(name, 600)
        self.server = JupyterServer(f"{url}/user/{name}/", token)
        self.kernel = self.server.start_session(f"{name}-gpu-check.ipynb")

    def run(self, code: str) -> str:
        from dlworkshop.clients.smoke.jupyter import run_code

        return run_code(self.server, self.kernel, code, timeout=600)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.client.stop(self.name)
            self.client.close()


def check_scenario(
    scenario: gpu_plan.Scenario, image: dict[str, Any], port: int, workdir: Path
) -> tuple[list[gpu_plan.Verdict], dict[str, Any]]:
    import yaml

    access_code = secrets.token_hex(8)
    config = workdir / f"workshop-{scenario.policy}.yaml"
    settings = gpu_plan.workshop_yaml(scenario, image, access_code, port, PREFIX)
    config.write_text(yaml.safe_dump(settings, sort_keys=False))
    verdicts: list[gpu_plan.Verdict] = []
    figures: dict[str, Any] = {"settings": settings["resources"]["gpu"]}
    with hub(config, port) as url:
        learners = [Learner(url, name, access_code) for name in scenario.learners]
        try:
            probes = {
                learner.name: json.loads(learner.run(PROBE).strip().splitlines()[-1]) for learner in learners
            }
            figures["learners"] = probes
            verdicts.append(gpu_plan.visibility_verdict(scenario, {n: p["uuids"] for n, p in probes.items()}))
            cap = gpu_plan.hub_cap_mb(probes)
            figures["memory_cap_mb"] = cap
            verdicts.append(gpu_plan.cap_verdict(scenario, cap, probes))
            if scenario.capped and cap and len(learners) == 2:
                held, past = gpu_plan.allocation_sizes_mb(cap)
                first, second = learners
                first.run(HOLD.format(mb=held))
                over = first.run(ALLOCATE.format(mb=past)).split("RESULT", 1)[-1].strip()
                neighbour = second.run(ALLOCATE.format(mb=held)).split("RESULT", 1)[-1].strip()
                figures["cap"] = {
                    "held_mb": held,
                    "asked_past_cap_mb": past,
                    "over": over,
                    "neighbour": neighbour,
                }
                verdicts.append(gpu_plan.cap_holds_verdict(scenario, "" if over == "ok" else over, neighbour))
        finally:
            for learner in learners:
                learner.stop()
        report = workdir / f"smoke-{scenario.policy}"
        episodes = [arg for episode in gpu_plan.GPU_EPISODES for arg in ("--episodes", episode)]
        say(f"  dlworkshop smoke-test --hub {url} {' '.join(episodes)} --size {gpu_plan.EPISODE_SIZE}")
        dlworkshop(
            "smoke-test", "--hub", url, *episodes, "--size", gpu_plan.EPISODE_SIZE,
            "-c", str(config), "--report", str(report),
        )  # fmt: skip
        report_file = report / "report.json"
        smoke = json.loads(report_file.read_text()) if report_file.is_file() else {}
        figures["smoke_test"] = smoke.get("checks", [])
        verdicts += gpu_plan.smoke_verdicts(scenario, smoke)
    return verdicts, figures


def image_settings(args: argparse.Namespace) -> dict[str, Any]:
    name, _, tag = args.image.rpartition(":")
    image: dict[str, Any] = {"name": name, "tag": tag}
    if args.archive:
        image |= {"source": "archive", "archive": str(Path(args.archive).resolve())}
    return image


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/gpu-check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="print every step, run none")
    parser.add_argument("--image", default="dlworkshop/learner:gpu-check", help="the CUDA image's tag")
    parser.add_argument("--archive", help="a `docker save` of the CUDA image to load (else it is built)")
    parser.add_argument("--port", type=int, default=8780, help="the check's hubs' port")
    args = parser.parse_args(argv)
    gpus = query_gpus()
    plan = gpu_plan.plan_checks(gpus)
    if args.dry_run or not gpus:
        say("scripts/gpu-check would:")
        for number, step in enumerate(gpu_plan.steps(plan, args.image, build=not args.archive), 1):
            say(f"  {number:2d}. {step}")
    if not gpus:
        print(f"error: {gpu_plan.NO_GPU_MESSAGE}", file=sys.stderr)
        return 2
    for gpu in gpus:
        say(f"GPU {gpu.index}: {gpu.name}, {gpu.memory_mb} MB, driver {gpu.driver}, MIG {gpu.mig_mode}")
    if args.dry_run:
        return 0
    sys.path.insert(0, str(REPO / "benchmarks"))
    from machine import machine  # what every results file records

    started = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    verdicts: list[gpu_plan.Verdict] = []
    scenarios: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as workdir:
        for scenario in plan.scenarios:
            say(f"[{scenario.policy}] {len(scenario.learners)} learner(s) on {', '.join(scenario.devices)}")
            found, figures = check_scenario(scenario, image_settings(args), args.port, Path(workdir))
            for verdict in found:
                say(f"  {'pass' if verdict.passed else 'FAIL'}  {verdict.check}: {verdict.measured}")
            verdicts += found
            scenarios[scenario.policy] = figures
    result = {
        "started": started,
        "machine": machine(),
        "gpus": [gpu.__dict__ for gpu in gpus],
        "image": args.image,
        "scenarios": scenarios,
        "verdicts": [verdict.__dict__ for verdict in verdicts],
        "not_checked": [item.__dict__ for item in plan.not_checked],
        "passed": all(verdict.passed for verdict in verdicts),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"gpu-check-{started}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    for item in plan.not_checked:
        say(f"not checked: {item.what}: {item.why}")
    say(f"{'GPU CHECK PASSED' if result['passed'] else 'GPU CHECK FAILED'}; results in {out}")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
