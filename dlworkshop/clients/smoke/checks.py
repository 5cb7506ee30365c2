"""The smoke test's checks, run inside a learner's Jupyter server, each reported on its own."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, cast

import httpx
from websockets.exceptions import WebSocketException

from dlworkshop import needs
from dlworkshop.clients.smoke.jupyter import CellError, JupyterServer, KernelDied, run_cells, run_code
from dlworkshop.lessons import Hardware, Lesson, Size

# Visible on purpose: Jupyter refuses hidden paths. Removed when the run ends.
WORK_FOLDER = "dlworkshop-smoke-test"


@dataclass
class CheckResult:
    check: str
    passed: bool
    measured: str
    budget: str = ""
    detail: str = ""
    seconds: float | None = None
    budget_seconds: float | None = None
    # Episodes: measured memory against the quota and the need (episode_memory).
    memory: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


PACKAGES = """
import importlib, json
found = {}
for name in ["tensorflow", "keras", "numpy", "pandas", "sklearn", "seaborn", "matplotlib", "keras_tuner", "pydot"]:
    found[name] = getattr(importlib.import_module(name), "__version__", "?")
print(json.dumps(found))
"""
DATA = """
import json, subprocess
result = subprocess.run(["dlworkshop", "data", "verify"], capture_output=True, text=True)
print(json.dumps({"code": result.returncode, "out": (result.stdout + result.stderr)[-800:]}))
"""
HARDWARE = """
import json, os, tensorflow as tf
from dlworkshop_learner import threads
gpus = tf.config.list_physical_devices("GPU")
caps = [c.memory_limit for g in gpus for c in (tf.config.get_logical_device_configuration(g) or [])]
print(json.dumps({
    "gpus": len(gpus), "gpu_caps_mb": caps, "gpu_cap_env": os.environ.get("DLWORKSHOP_GPU_MEMORY_MB"),
    "intra": tf.config.threading.get_intra_op_parallelism_threads(),
    "inter": tf.config.threading.get_inter_op_parallelism_threads(),
    "expected_threads": threads.thread_count(threads.cpu_quota()), "cpu_quota": threads.cpu_quota(),
}))
"""


# Inside a learner's kernel: its container's (or job's) memory cgroup, v2 or v1 (limit, peak, OOM
# kills so far), and this kernel's own peak resident memory and CPU-seconds.
MEMORY = """
import json, os, resource
def _cgroup():
    for line in open("/proc/self/cgroup"):
        _, controllers, path = line.strip().split(":", 2)
        if controllers == "":
            v2 = "/sys/fs/cgroup" + path
            yield (v2 if os.path.exists(v2 + "/memory.max") else "/sys/fs/cgroup"), 2
        elif "memory" in controllers.split(","):
            v1 = "/sys/fs/cgroup/memory" + path
            yield (v1 if os.path.exists(v1 + "/memory.limit_in_bytes") else "/sys/fs/cgroup/memory"), 1
def _read(path):
    try:
        return open(path).read()
    except OSError:
        return None
def _number(text):
    text = (text or "").strip()
    return int(text) if text.isdigit() else None
def _count(text, key):
    for line in (text or "").splitlines():
        if line.startswith(key + " "):
            return int(line.split()[1])
    return None
found = {"limit": None, "peak": None, "oom_kills": None}
for folder, version in _cgroup():
    if version == 2 and os.path.exists(folder + "/memory.max"):
        found = {"limit": _number(_read(folder + "/memory.max")), "peak": _number(_read(folder + "/memory.peak")),
                 "oom_kills": _count(_read(folder + "/memory.events"), "oom_kill")}
        break
    if version == 1 and os.path.exists(folder + "/memory.limit_in_bytes"):
        limit = _number(_read(folder + "/memory.limit_in_bytes"))
        found = {"limit": limit if limit and limit < 2**60 else None,
                 "peak": _number(_read(folder + "/memory.max_usage_in_bytes")),
                 "oom_kills": _count(_read(folder + "/memory.oom_control"), "oom_kill")}
        break
usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
found["kernel_peak"] = max(u.ru_maxrss for u in usage) * 1024
found["cpu_seconds"] = round(sum(u.ru_utime + u.ru_stime for u in usage), 2)
print(json.dumps(found))
"""


def memory_probe(server: JupyterServer, kernel: str, timeout: float = 60) -> dict[str, Any] | None:
    """MEMORY's figures from a kernel; None where the server or kernel does not answer."""
    try:
        return _json_of(run_code(server, kernel, MEMORY, timeout))
    except (
        OSError,
        httpx.HTTPError,
        WebSocketException,
        CellError,
        KernelDied,
        TimeoutError,
        ValueError,
        IndexError,
    ):
        return None  # a server that died with its kernel answers nothing useful


def probe_after_death(server: JupyterServer, kernel: str, timeout: float = 90) -> dict[str, Any] | None:
    """MEMORY's figures after the kernel died: the server restarts it under the same id, which takes
    a while under a tight quota (a first try can meet the restart still going, or the memory of the
    killed kernel not yet given back). Asked again until `timeout`; None when the server never
    answers (its container gone)."""
    deadline = time.monotonic() + timeout
    while True:
        found = memory_probe(server, kernel, timeout=max(5.0, min(30.0, deadline - time.monotonic())))
        if found is not None or time.monotonic() >= deadline:
            return found
        time.sleep(2)


def _json_of(output: str) -> dict[str, Any]:
    return json.loads(output.strip().splitlines()[-1])


# Inside a learner's server: the Slurm job it runs in, where, and when it was submitted and started.
PLACEMENT = """
import json, os, subprocess
job = os.environ.get("SLURM_JOB_ID")
found = {"job": job, "squeue": ""}
if job:
    found["squeue"] = subprocess.run(
        ["squeue", "--noheader", "--jobs", job, "--format=%N|%V|%S"], capture_output=True, text=True
    ).stdout.strip()
print(json.dumps(found))
"""


def engine_placement(server: JupyterServer, kernel: str) -> str:
    """Where the engine placed the server, as the spawn check reports it ('' outside a Slurm job)."""
    info = _json_of(run_code(server, kernel, PLACEMENT))
    if not info.get("job") or info.get("squeue", "").count("|") != 2:
        return ""
    node, submitted, started = info["squeue"].split("|")
    try:
        queued = (datetime.fromisoformat(started) - datetime.fromisoformat(submitted)).total_seconds()
    except ValueError:
        return f" (Slurm job {info['job']} on {node})"
    return f" (Slurm job {info['job']} on {node}, {queued:.0f} s queued)"


def check_packages(server: JupyterServer, kernel: str) -> CheckResult:
    before = memory_probe(server, kernel)
    try:
        versions = _json_of(run_code(server, kernel, PACKAGES))
    except CellError as exc:
        return CheckResult("packages", False, "import failed", detail=str(exc))
    except KernelDied as died:
        # Importing TensorFlow alone outgrows a quota of a few hundred megabytes.
        reason = needs.died_reason(str(died), probe_after_death(server, kernel), before, None, episode=False)
        return CheckResult("packages", False, f"import failed: {reason}", detail=reason)
    return CheckResult(
        "packages",
        True,
        f"tensorflow {versions['tensorflow']}, keras {versions['keras']}",
        detail=json.dumps(versions),
    )


def check_data(server: JupyterServer, kernel: str) -> CheckResult:
    result = _json_of(run_code(server, kernel, DATA))
    result["out"] = re.sub(r"\x1b\[[0-9;]*m", "", result["out"])  # the CLI may colour its lines
    first_problem = next(
        (line for line in result["out"].splitlines() if line.startswith(("bad", "error"))), ""
    )
    return CheckResult(
        "data caches verified offline",
        result["code"] == 0,
        "all files match their hashes" if result["code"] == 0 else first_problem,
        detail=result["out"],
    )


def hardware_checks(
    server: JupyterServer, kernel: str, gpu_policy: str, gpu_devices_passed: bool
) -> tuple[str, list[CheckResult]]:
    """Threads against the CPU quota; with GPUs in the settings, the GPU and its memory cap (or,
    where devices are deliberately not passed to Docker, that the quota was still assigned)."""
    info = _json_of(run_code(server, kernel, HARDWARE))
    hardware = "gpu" if info["gpus"] else "cpu"
    threads_ok = info["intra"] == info["expected_threads"] and info["inter"] == info["expected_threads"]
    results = [
        CheckResult(
            "thread pools match the CPU quota",
            threads_ok,
            f"intra {info['intra']}, inter {info['inter']}",
            f"{info['expected_threads']} for a quota of {info['cpu_quota']} CPUs",
        )
    ]
    if gpu_policy != "none" and not gpu_devices_passed:
        results.append(
            CheckResult(
                "GPU quota assigned",
                info["gpu_cap_env"] is not None,
                f"DLWORKSHOP_GPU_MEMORY_MB={info['gpu_cap_env']}",
                "a share (devices not passed to Docker)",
            )
        )
    elif gpu_policy != "none":
        cap_ok = bool(info["gpus"]) and (
            info["gpu_cap_env"] is None or all(cap == int(info["gpu_cap_env"]) for cap in info["gpu_caps_mb"])
        )
        results.append(
            CheckResult(
                "GPU visible with its memory cap",
                cap_ok,
                f"{info['gpus']} GPU(s), cap {info['gpu_caps_mb'] or 'none'} MB",
                f"cap {info['gpu_cap_env'] or 'memory growth'}",
            )
        )
    return hardware, results


def parameterized(lesson: Lesson, size: Size) -> dict[str, Any]:
    import nbformat
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    notebook = load_notebook_node(str(lesson.path))
    parameters = {**lesson.parameters_for(size), "output_dir": f"out/{lesson.name}"}
    return json.loads(nbformat.writes(parameterize_notebook(notebook, parameters)))


def run_episode(
    server: JupyterServer,
    lesson: Lesson,
    size: Size,
    hardware: str,
    progress: Callable[[str], None],
) -> CheckResult:
    """Upload the parameterised notebook, run its cells in a kernel of its own, time it."""
    budget = lesson.budget_for(cast(Hardware, hardware), size)
    path = f"{WORK_FOLDER}/{lesson.path.name}"
    notebook = parameterized(lesson, size)
    server.put_notebook(path, notebook)
    kernel = server.start_session(path)
    cells = [
        "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        for cell in notebook["cells"]
        if cell["cell_type"] == "code"
    ]
    need = needs.need_of(lesson.name, lesson.needs)
    before = memory_probe(server, kernel)
    after: dict[str, Any] | None = None
    started = time.monotonic()
    try:
        progress(f"episode {lesson.name}: {len(cells)} cells")
        asyncio.run(run_cells(server, kernel, cells, cell_timeout=max(budget * 4, 300)))
        seconds = time.monotonic() - started
        passed, detail = seconds <= budget, ""
        after = memory_probe(server, kernel)
    except KernelDied as died:
        seconds, passed = time.monotonic() - started, False
        progress(f"episode {lesson.name}: the kernel died; asking its container why")
        # The server restarts a dead kernel: the new one reads the cgroup's OOM count.
        after = probe_after_death(server, kernel)
        detail = f"failed: {needs.died_reason(str(died), after, before, need)}"
    except (CellError, TimeoutError) as exc:
        seconds, passed = time.monotonic() - started, False
        detail = f"failed: {exc or type(exc).__name__}"
    finally:
        server.shutdown_kernel(kernel)
    return CheckResult(
        f"episode {lesson.name}",
        passed,
        f"{seconds:.1f} s" + (f" ({detail})" if detail else ""),
        f"{budget:g} s ({hardware}, {size})",
        detail=detail,
        seconds=seconds,
        budget_seconds=budget,
        memory=episode_memory(before, after, need),
    )


def episode_memory(
    before: dict[str, Any] | None, after: dict[str, Any] | None, need: needs.EpisodeNeed | None
) -> dict[str, Any]:
    """What the report shows of an episode's memory: the kernel's own peak and CPU-seconds, the
    container's peak so far (cgroup v1 cannot reset it between episodes), the quota, the need."""
    found: dict[str, Any] = {
        "limit_bytes": (after or before or {}).get("limit"),
        "need_bytes": need.quota_bytes if need else None,
        # The container's peak so far (cgroup v1 cannot reset it between episodes): at the quota
        # where the kernel was killed for memory.
        "container_peak_bytes": (after or {}).get("peak"),
    }
    if after is not None and after.get("oom_kills") == (before or {}).get("oom_kills"):
        # Only a kernel that lived through the episode measured it (a restarted one starts afresh).
        found.update(kernel_peak_bytes=after.get("kernel_peak"), cpu_seconds=after.get("cpu_seconds"))
    return found
