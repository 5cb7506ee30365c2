"""The learner environment on a cluster's shared storage, copied out of the BUILT learner image
(never installed a second time): its venv, data, lessons and start hook, plus batchspawner's wrapper
pinned to the hub's version. Laid out under the prefix every compute node sees:

    <prefix>/venv                 the image's venv (scripts point at <prefix>/venv/bin/python)
    <prefix>/share                the image's /opt/dlworkshop: data, lessons, start hook
    <prefix>/batchspawner         batchspawner, on PYTHONPATH
    <prefix>/activate             the image's environment variables, paths moved
    <prefix>/start-server         the image's entry point: activate, start hook, then the command
    <prefix>/dlworkshop-env.json  what was installed: image ID, jupyterhub and batchspawner versions

`dlworkshop env install --prefix P [--dest D]` writes it (D: where this machine sees P, e.g. a
mount of the shared filesystem); `dlworkshop env pack` writes the same tree as a tar for the deploy.
The copy runs in a container of the image (`docker run` with the destination mounted), which reads
the image's layers directly: twice as fast as `docker cp` out of a created container.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlworkshop import contract
from dlworkshop.errors import WorkshopError

VENV_DIR = "venv"
SHARE_DIR = "share"
BATCHSPAWNER_DIR = "batchspawner"
START_SCRIPT = "start-server"
MARKER = "dlworkshop-env.json"
# The learner image's Jupyter server settings (Dockerfile: image/jupyter/jupyter_server_config.py).
SERVER_CONFIG = "/etc/jupyter/jupyter_server_config.py"
LOCK = Path(__file__).resolve().parent / "requirements-learner.lock"
ASSEMBLE = Path(__file__).resolve().parent / "assemble.py"
Say = Callable[[str], object]


@dataclass(frozen=True)
class Installed:
    """The marker an installed environment carries."""

    image: str
    image_id: str
    prefix: str
    python: str
    jupyterhub: str
    batchspawner: str


def _docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check)


def image_facts(image: str) -> dict[str, Any]:
    found = _docker("image", "inspect", image, check=False)
    if found.returncode != 0:
        raise WorkshopError(
            f"the learner image {image} is not on this machine",
            fix="build it first (`dlworkshop image build`, or `dlworkshop up` builds what is missing)",
        )
    return json.loads(found.stdout)[0]


def start_command(entrypoint: list[str]) -> list[str]:
    """The image's entry point without its init (srun is the job step's init)."""
    if entrypoint and Path(entrypoint[0]).name == "tini":
        return entrypoint[entrypoint.index("--") + 1 :] if "--" in entrypoint else entrypoint[1:]
    return entrypoint


def download_wheels(folder: Path) -> list[Path]:
    """batchspawner's wheel, hash-checked against the lock (pip honours this machine's pip.conf)."""
    folder.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--require-hashes",
         "--disable-pip-version-check", "--dest", str(folder), "-r", str(LOCK)],
        capture_output=True, text=True,
    )  # fmt: skip
    if result.returncode != 0:
        raise WorkshopError(
            f"downloading batchspawner for the learner environment failed: {result.stderr.strip()[-300:]}",
            fix="this machine needs to reach PyPI (or a mirror in pip.conf) once",
        )
    return sorted(folder.glob("*.whl"))


def install(image: str, prefix: str, dest: Path | None = None, say: Say = print) -> Installed:
    """Write the environment for `prefix` into `dest` (default: prefix itself)."""
    if not prefix.startswith("/"):
        raise WorkshopError(f"--prefix {prefix} is not an absolute path", fix="give where the nodes see it")
    target = (dest or Path(prefix)).resolve()
    facts = image_facts(image)
    config = facts["Config"]
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="dlworkshop-env-") as scratch:
        job = Path(scratch)
        wheels = download_wheels(job / "wheels")
        plan = {
            "image": image,
            "image_id": facts["Id"],
            "target": "/target",
            "prefix": prefix.rstrip("/"),
            "image_venv": contract.learner.VENV,
            "image_share": contract.learner.PREFIX,
            "image_env": config.get("Env") or [],
            "start": start_command(config.get("Entrypoint") or []),
            "work_env": contract.learner.WORK_ENV,
            "cpu_env": contract.learner.CPU_LIMIT_ENV,
            "stage_plan_file": contract.learner.STAGE_PLAN_FILE,
            "server_config": SERVER_CONFIG,
            "batchspawner_dir": BATCHSPAWNER_DIR,
            "start_script": START_SCRIPT,
            "marker": MARKER,
            "wheels": [f"/job/wheels/{wheel.name}" for wheel in wheels],
        }
        say(f"copying the learner environment out of {image} into {target} (for {prefix} on the nodes)")
        return _assemble(image, plan, job, target, f"{contract.learner.VENV}/bin/python")


def _assemble(image: str, plan: dict[str, Any], job: Path, target: Path, python: str) -> Installed:
    """Run assemble.py with `plan` in a container of the image, the target folder mounted."""
    (job / "plan.json").write_text(json.dumps(plan))
    shutil.copy(ASSEMBLE, job / "assemble.py")
    os.chmod(job, 0o755)
    result = _docker(
        "run", "--rm", "--user", f"{os.getuid()}:{os.getgid()}", "--network", "none",
        "--entrypoint", python, "-v", f"{target}:/target", "-v", f"{job}:/job:ro",
        image, "/job/assemble.py", "/job/plan.json",
        check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise WorkshopError(
            f"copying out of {image} failed: {(result.stderr or result.stdout).strip()[-400:]}",
            fix="check that the destination is writable and has room",
        )
    return Installed(**json.loads(result.stdout.strip().splitlines()[-1]))


# The hub image's layout (hub/Dockerfile): its venv, the proxy npm installed, the hub's code.
HUB_IMAGE_VENV = "/opt/venv"
HUB_IMAGE_PROXY = "/usr/local/lib/node_modules/configurable-http-proxy"
HUB_MARKER = "dlworkshop-hub.json"


def pack_hub(image: str, prefix: str, out: Path, say: Say = print) -> Installed:
    """The hub for a login node, out of the built hub image: the venv of the hub's lock, the hub's
    code and jupyterhub_config.py, and configurable-http-proxy (run by Debian's nodejs), as a tar to
    unpack at `prefix`. Kept while the image is the same."""
    facts = image_facts(image)
    with tempfile.TemporaryDirectory(prefix="dlworkshop-hub-", dir=out.parent) as scratch:
        job, tree = Path(scratch) / "job", Path(scratch) / "tree"
        job.mkdir()
        tree.mkdir()
        plan = {
            "kind": "hub",
            "image": image,
            "image_id": facts["Id"],
            "target": "/target",
            "prefix": prefix,
            "image_venv": HUB_IMAGE_VENV,
            "image_app": str(contract.HUB_CODE),
            "app": ["hub", contract.HUB_CONFIG_FILE.name],
            "image_proxy": HUB_IMAGE_PROXY,
            "marker": HUB_MARKER,
        }
        say(f"copying the hub out of {image} (for {prefix} on the login node)")
        installed = _assemble(image, plan, job, tree, f"{HUB_IMAGE_VENV}/bin/python")
        _tar(tree, out)
    return installed


def _tar(tree: Path, out: Path) -> None:
    partial = out.with_suffix(".part")
    subprocess.run(
        ["tar", "-C", str(tree), "--owner=0", "--group=0", "--numeric-owner", "-cf", str(partial), "."],
        check=True,
    )
    partial.rename(out)
    subprocess.run(["chmod", "-R", "u+w", str(tree)], check=True)  # the data is read-only


def read_installed(root: Path) -> Installed | None:
    marker = root / MARKER
    return Installed(**json.loads(marker.read_text())) if marker.is_file() else None


def pack(image: str, prefix: str, out: Path, say: Say = print) -> Installed:
    """The same tree as a tar (owned by root, paths relative to the prefix), for the deploy to unpack
    on shared storage; kept while the image is the same."""
    with tempfile.TemporaryDirectory(prefix="dlworkshop-env-tree-", dir=out.parent) as tree:
        installed = install(image, prefix, Path(tree), say=say)
        say(f"packing it into {out}")
        _tar(Path(tree), out)
    return installed
