"""Learner-container hooks, installed into the image's site-packages as `dlworkshop_learner_hooks`.

- `python -m dlworkshop_learner_hooks start` runs once per server start (image/start.sh): prints the
  thread settings for the container's CPU quota as shell exports, links the data caches, and copies
  the lessons into the work folder without overwriting a learner's edits.
- `install()` runs in every Python process (a .pth file): the offline URL hook, and TensorFlow
  configured lazily when (and only if) a kernel imports it: thread pools and the GPU memory cap.
Nothing here may break a learner's Python: every hook swallows its own failure with a warning.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
import warnings
from pathlib import Path
from types import ModuleType

THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
)
GPU_MEMORY_ENV = "DLWORKSHOP_GPU_MEMORY_MB"


def cpu_quota(
    cgroup_root: Path = Path("/sys/fs/cgroup"), environ: dict[str, str] | None = None
) -> float | None:
    """CPUs this container may use: the cgroup v2 or v1 CFS quota, else JupyterHub's CPU_LIMIT."""
    environ = os.environ if environ is None else environ
    v2 = cgroup_root / "cpu.max"
    try:
        if v2.is_file():
            quota, period = v2.read_text().split()[:2]
            if quota != "max":
                return int(quota) / int(period)
        for v1 in (cgroup_root / "cpu", cgroup_root / "cpu,cpuacct", cgroup_root):
            quota_file = v1 / "cpu.cfs_quota_us"
            if quota_file.is_file():
                quota = int(quota_file.read_text())
                if quota > 0:
                    return quota / int((v1 / "cpu.cfs_period_us").read_text())
                break
    except (OSError, ValueError):
        pass
    try:
        return float(environ["CPU_LIMIT"]) if environ.get("CPU_LIMIT") else None
    except ValueError:
        return None


def thread_count(quota: float | None, cores: int | None = None) -> int:
    """Threads per pool: the quota rounded up, never more than the cores, never less than 1."""
    cores = cores or os.cpu_count() or 1
    if quota is None:
        return cores
    return max(1, min(cores, math.ceil(quota - 1e-9)))


def thread_exports(environ: dict[str, str] | None = None) -> dict[str, str]:
    environ = os.environ if environ is None else environ
    threads = str(thread_count(cpu_quota(environ=environ)))
    # A value the deployer set explicitly wins.
    return {name: environ.get(name) or threads for name in THREAD_VARIABLES}


def cuda_library_path(site_packages: Path) -> str | None:
    """The folders of the pip CUDA wheels (tensorflow[and-cuda]), for LD_LIBRARY_PATH."""
    folders = sorted(str(p) for p in (site_packages / "nvidia").glob("*/lib") if p.is_dir())
    return ":".join(folders) or None


def copy_lessons(source: Path, target: Path) -> list[Path]:
    """Copy lessons into the work folder; a file that exists there (maybe edited) is never touched."""
    copied = []
    for path in sorted(source.rglob("*")):
        destination = target / path.relative_to(source)
        if path.is_dir():
            destination.mkdir(parents=True, exist_ok=True)
        elif not destination.exists():
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, destination)
            copied.append(destination)
    return copied


def start() -> None:
    """Once per server start: print exports for the shell, stage caches, copy lessons."""
    exports = thread_exports()
    site_packages = (
        Path(sys.prefix)
        / "lib"
        / f"python{sys.version_info.major}.{sys.version_info.minor}"
        / "site-packages"
    )
    cuda = cuda_library_path(site_packages)
    if cuda:
        exports["LD_LIBRARY_PATH"] = ":".join(filter(None, [cuda, os.environ.get("LD_LIBRARY_PATH")]))
    for name, value in exports.items():
        print(f"export {name}={value}")
    try:
        from dlworkshop.data import data_root
        from dlworkshop.data.stage import CacheRoots, link, read_plan

        planned = read_plan(data_root())
        if planned is None:  # an image built before plans: read the registry itself
            from dlworkshop.data.registry import load_registry
            from dlworkshop.data.stage import plan

            planned = plan(load_registry(), data_root())
        missing = [r for r in link(planned, CacheRoots.from_environment()) if r.action == "missing"]
        for result in missing:
            print(f"echo 'dlworkshop: data file missing: {result.source}' >&2")
    except Exception as exc:  # the server must start even if staging fails; the smoke test reports it
        print(f"echo 'dlworkshop: staging data failed: {exc}' >&2")
    lessons = Path(os.environ.get("DLWORKSHOP_LESSONS", "/opt/dlworkshop/lessons"))
    work = Path(os.environ.get("DLWORKSHOP_WORK", Path.home() / "work"))
    if lessons.is_dir() and work.is_dir() and os.access(work, os.W_OK):
        copy_lessons(lessons, work / "lessons")


def configure_tensorflow(tf: ModuleType) -> None:
    """Thread pools from the environment, and the GPU memory cap (or memory growth), before any op."""
    try:
        intra = os.environ.get("TF_NUM_INTRAOP_THREADS")
        inter = os.environ.get("TF_NUM_INTEROP_THREADS")
        if intra:
            tf.config.threading.set_intra_op_parallelism_threads(int(intra))
        if inter:
            tf.config.threading.set_inter_op_parallelism_threads(int(inter))
        cap = os.environ.get(GPU_MEMORY_ENV)
        for gpu in tf.config.list_physical_devices("GPU"):
            if cap:
                tf.config.set_logical_device_configuration(
                    gpu, [tf.config.LogicalDeviceConfiguration(memory_limit=int(cap))]
                )
            else:
                tf.config.experimental.set_memory_growth(gpu, True)
    except Exception as exc:
        warnings.warn(f"dlworkshop could not configure TensorFlow: {exc}", stacklevel=1)


def install() -> None:
    """Called from the .pth file at every Python start; cheap, and never raises."""
    try:
        from dlworkshop import offline
        from dlworkshop.import_hooks import when_imported

        offline.install()
        when_imported("tensorflow", configure_tensorflow)
    except Exception as exc:
        warnings.warn(f"dlworkshop learner hooks not installed: {exc}", stacklevel=1)


if __name__ == "__main__" and sys.argv[1:] == ["start"]:
    start()
