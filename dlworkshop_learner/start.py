"""The learner image's entry point, once per server start, before the server itself:

    tini -g -- python -m dlworkshop_learner.start jupyterhub-singleuser

sets the thread variables for the container's CPU quota and the CUDA wheels' library path (the
server and its kernels inherit them), links the data caches from the build-time plan, copies the
lessons into the work folder without overwriting a learner's edits, says in the server's log when the
CUDA image finds no GPU, then replaces itself with the command. A step that fails is reported on stderr, never fatal: the server starts, and the smoke
test names what is missing.
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from collections.abc import Mapping
from pathlib import Path

from dlworkshop_learner import layout
from dlworkshop_learner.data_links import CacheRoots, link, read_plan
from dlworkshop_learner.threads import thread_variables


def cuda_library_path(site_packages: Path) -> str | None:
    """The folders of the pip CUDA wheels (tensorflow[and-cuda]), for LD_LIBRARY_PATH."""
    folders = sorted(str(p) for p in (site_packages / "nvidia").glob("*/lib") if p.is_dir())
    return ":".join(folders) or None


def no_gpu_notice(site_packages: Path, dev: Path = Path("/dev")) -> str | None:
    """The server log's one line where the CUDA image (its NVIDIA wheels present) runs in a container
    given no GPU (no /dev/nvidia<N>; the NVIDIA container toolkit adds one per GPU, MIG slices
    included); None where there is one, and in the CPU image."""
    if cuda_library_path(site_packages) is None or any(dev.glob("nvidia[0-9]*")):
        return None
    return (
        "dlworkshop: no NVIDIA GPU found in this container (no /dev/nvidia<N> device): "
        "TensorFlow runs on the CPU"
    )


def server_environment(environ: Mapping[str, str], site_packages: Path) -> dict[str, str]:
    """The variables this start sets: thread pools, and the CUDA libraries where the wheels are."""
    variables = thread_variables(environ)
    cuda = cuda_library_path(site_packages)
    if cuda:
        variables["LD_LIBRARY_PATH"] = ":".join(filter(None, [cuda, environ.get("LD_LIBRARY_PATH")]))
    return variables


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


def prepare_work() -> list[str]:
    """Link the data caches and copy the lessons in, where this process's environment says; returns
    the problems, one line each."""
    problems = []
    try:
        results = link(read_plan(layout.data_root()), CacheRoots.from_environment())
        problems += [f"data file missing: {r.source}" for r in results if r.action == "missing"]
    except Exception as exc:  # the server must start even if staging fails; the smoke test reports it
        problems.append(f"staging data failed: {exc}")
    lessons = Path(os.environ.get(layout.LESSONS_ENV, layout.LESSONS_DIR))
    work = Path(os.environ.get(layout.WORK_ENV, layout.WORK_FOLDER))
    try:
        if lessons.is_dir() and work.is_dir() and os.access(work, os.W_OK):
            copy_lessons(lessons, work / "lessons")
    except OSError as exc:
        problems.append(f"copying the lessons failed: {exc}")
    return problems


def main(command: list[str]) -> int:
    site_packages = Path(sysconfig.get_paths()["purelib"])
    os.environ.update(server_environment(os.environ, site_packages))
    notice = no_gpu_notice(site_packages)
    if notice:
        print(notice, file=sys.stderr, flush=True)
    for problem in prepare_work():
        print(f"dlworkshop: {problem}", file=sys.stderr)
    if not command:
        return 0
    try:
        os.execvp(command[0], command)
    except OSError as exc:
        print(f"dlworkshop: cannot run {command[0]}: {exc.strerror}", file=sys.stderr)
    return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
