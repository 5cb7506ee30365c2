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

from dlworkshop.clients.smoke.jupyter import CellError, JupyterServer, run_cells, run_code
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
    try:
        versions = _json_of(run_code(server, kernel, PACKAGES))
    except CellError as exc:
        return CheckResult("packages", False, "import failed", detail=str(exc))
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
    started = time.monotonic()
    try:
        progress(f"episode {lesson.name}: {len(cells)} cells")
        asyncio.run(run_cells(server, kernel, cells, cell_timeout=max(budget * 4, 300)))
        seconds = time.monotonic() - started
        passed, detail = seconds <= budget, ""
    except (CellError, TimeoutError) as exc:
        seconds, passed, detail = time.monotonic() - started, False, f"failed: {exc}"
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
    )
