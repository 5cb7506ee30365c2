"""Run INSIDE a container of the built learner image (standard library only): copy the image's venv
and its read-only material (data, lessons, start hook) into a tree that every compute node sees at
`prefix`, and make it work there. `dlworkshop env install` runs it (dlworkshop/slurm/environment.py):

    python3 assemble.py PLAN.json

What moving a venv needs: script shebangs and the data links' plan point at the new place; the
image's environment variables and entry point become `activate` and `start-server`; batchspawner
(pinned to the hub's version) goes beside the venv, not into it, so the image's lock stays as it is.
"""

from __future__ import annotations

import importlib.metadata
import json
import platform
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

ACTIVATE = """\
# The learner image's environment on a compute node (written by `dlworkshop env install` from
# {image}). Sourced by start-server before the image's start hook runs.
{exports}
# The learner's work folder is in their own home on the cluster.
export {work_env}="${{{work_env}:-$HOME/work}}"
# batchspawner's wrapper (it tells the hub the port the server picked), beside the venv.
export PYTHONPATH="{prefix}/{batchspawner}${{PYTHONPATH:+:$PYTHONPATH}}"
# Thread pools follow the CPUs Slurm granted: the start hook reads CPU_LIMIT where no cgroup quota says.
if [ -n "${{SLURM_CPUS_PER_TASK:-}}" ]; then export {cpu_env}="$SLURM_CPUS_PER_TASK"; fi
"""

START_SERVER = """\
#!/bin/bash
# The learner image's entry point on a compute node: its environment, its start hook, then the
# command (written by `dlworkshop env install`).
set -e
. "{prefix}/activate"
exec {start} "$@"
"""


def mapped(value: str, moves: dict[str, str]) -> str:
    for old, new in moves.items():
        value = value.replace(old, new)
    return value


def remove(path: Path) -> None:
    if path.exists():
        subprocess.run(["chmod", "-R", "u+w", str(path)], check=True)  # the data is read-only
        subprocess.run(["rm", "-rf", str(path)], check=True)


def copy_tree(source: str, target: Path) -> None:
    remove(target)
    # Modes and links kept; owned by whoever runs this (the installing user).
    subprocess.run(["cp", "-R", "--preserve=mode,timestamps,links", source, str(target)], check=True)


def rewrite_shebangs(bin_dir: Path, old_python: str, new_python: str) -> int:
    changed = 0
    for script in bin_dir.iterdir():
        if script.is_symlink() or not script.is_file():
            continue
        with script.open("rb") as handle:
            head = handle.read(len(old_python) + 2)
        if head.startswith(f"#!{old_python}".encode()):
            content = script.read_bytes()
            script.write_bytes(content.replace(f"#!{old_python}".encode(), f"#!{new_python}".encode(), 1))
            changed += 1
    return changed


def writable(path: Path) -> None:
    path.chmod(path.stat().st_mode | stat.S_IWUSR)


def write_marker(plan: dict[str, Any], target: Path, prefix: str, batchspawner: str) -> dict[str, str]:
    """What was installed where, read by the deploy and `dlworkshop verify` (versions must match the hub's)."""
    marker = {
        "image": plan["image"],
        "image_id": plan["image_id"],
        "prefix": prefix,
        "python": platform.python_version(),
        "jupyterhub": importlib.metadata.version("jupyterhub"),
        "batchspawner": batchspawner,
    }
    (target / plan["marker"]).write_text(json.dumps(marker, indent=1) + "\n")
    return marker


def hub(plan: dict[str, Any]) -> int:
    """The hub's bundle for a login node, out of the hub image: its venv (the hub's lock, hash-checked
    when the image was built), the hub's code and configuration file, and the proxy."""
    target, prefix = Path(plan["target"]), plan["prefix"]
    target.mkdir(parents=True, exist_ok=True)
    copy_tree(plan["image_venv"], target / "venv")
    rewrite_shebangs(target / "venv" / "bin", f"{plan['image_venv']}/bin/python", f"{prefix}/venv/bin/python")
    (target / "app").mkdir(exist_ok=True)
    for name in plan["app"]:
        copy_tree(f"{plan['image_app']}/{name}", target / "app" / name)
    # The image's .pth files that put the hub's code on the path name where it is now.
    for pth in (target / "venv").glob("lib/python3*/site-packages/*.pth"):
        text = pth.read_text()
        if plan["image_app"] in text:
            pth.write_text(text.replace(plan["image_app"], f"{prefix}/app"))
    copy_tree(plan["image_proxy"], target / "proxy")
    marker = write_marker(plan, target, prefix, importlib.metadata.version("batchspawner"))
    subprocess.run(["chmod", "-R", "a+rX,go-w", str(target)], check=True)
    print(json.dumps(marker))
    return 0


def main(plan_file: str) -> int:
    plan = json.loads(Path(plan_file).read_text())
    if plan.get("kind") == "hub":
        return hub(plan)
    target, prefix = Path(plan["target"]), plan["prefix"]
    moves = {plan["image_venv"]: f"{prefix}/venv", plan["image_share"]: f"{prefix}/share"}
    target.mkdir(parents=True, exist_ok=True)
    copy_tree(plan["image_venv"], target / "venv")
    copy_tree(plan["image_share"], target / "share")
    subprocess.run(["rm", "-f", str(target / "share" / "requirements.lock")], check=True)
    # The image's Jupyter server settings (kernel started ahead, no jupyter-lsp, TensorBoard):
    # /etc/jupyter there, the venv's own etc/jupyter here (Jupyter reads both).
    server_config = Path(plan["server_config"])
    if server_config.is_file():
        (target / "venv" / "etc" / "jupyter").mkdir(parents=True, exist_ok=True)
        subprocess.run(["cp", str(server_config), str(target / "venv" / "etc" / "jupyter")], check=True)
    rewrite_shebangs(target / "venv" / "bin", f"{plan['image_venv']}/bin/python", f"{prefix}/venv/bin/python")

    # The data links' plan names the copies where the image had them.
    data = target / "share" / "data"
    stage_plan = data / plan["stage_plan_file"]
    if stage_plan.is_file():
        writable(data)
        writable(stage_plan)
        links = json.loads(stage_plan.read_text())
        for link in links:
            link["source"] = mapped(link["source"], moves)
        stage_plan.write_text(json.dumps(links, indent=1))
        stage_plan.chmod(0o444)
        data.chmod(0o555)

    batchspawner = target / plan["batchspawner_dir"]
    remove(batchspawner)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--no-compile",
         "--disable-pip-version-check", "--target", str(batchspawner), *plan["wheels"]],
        check=True,
    )  # fmt: skip

    exports = []
    for variable in plan["image_env"]:
        name, _, value = variable.partition("=")
        if name == "PATH":
            value = f"{prefix}/venv/bin:${{PATH:-/usr/local/bin:/usr/bin:/bin}}"
            exports.append(f'export PATH="{value}"')
        elif name != plan["work_env"] and name != "HOME":
            exports.append(f"export {name}={json.dumps(mapped(value, moves))}")
    (target / "activate").write_text(
        ACTIVATE.format(
            image=plan["image"],
            exports="\n".join(exports),
            work_env=plan["work_env"],
            cpu_env=plan["cpu_env"],
            prefix=prefix,
            batchspawner=plan["batchspawner_dir"],
        )
    )
    start = [mapped(part, moves) for part in plan["start"]]
    script = target / plan["start_script"]
    script.write_text(START_SERVER.format(prefix=prefix, start=" ".join(start)))
    script.chmod(0o755)

    installed = importlib.metadata.distributions(path=[str(batchspawner)], name="batchspawner")
    marker = write_marker(plan, target, prefix, next(iter(installed)).version)
    subprocess.run(["chmod", "-R", "a+rX", str(target)], check=True)
    print(json.dumps(marker))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
