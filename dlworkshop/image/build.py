"""`dlworkshop image build`: the learner image from the root Dockerfile, with progress.

The data is fetched and verified here, on the building machine, into a folder of the build context
named by the registry's hash (`.cache/image-data/<hash>/`); the Dockerfile copies it in early. So no
layer before the last ones depends on this project's code: a code change rebuilds only those, and
the data layer is cached while the data is unchanged.
"""

from __future__ import annotations

import collections
import hashlib
import os
import re
import subprocess
from pathlib import Path
from typing import Literal

from rich.console import Console

from dlworkshop.contract import learner
from dlworkshop.errors import WorkshopError
from dlworkshop.image.ca_bundle import CaBundleSetting, resolve_ca_bundle
from dlworkshop.image.docker import require_engine
from dlworkshop.image.failures import diagnose

REPO = Path(__file__).resolve().parents[2]
# Where the build's verified data copies wait in the build context (git-ignored; .dockerignore lets
# it through).
IMAGE_DATA = Path(".cache") / "image-data"
Variant = Literal["cpu", "cuda"]
STEP = re.compile(r"^#\d+ \[(?P<stage>[^\]]+)\] (?P<what>.*)$")


def lock_file(variant: Variant) -> Path:
    return REPO / "image" / f"requirements-{variant}.lock"


def lock_sha256(variant: Variant) -> str:
    return hashlib.sha256(lock_file(variant).read_bytes()).hexdigest()


def git_revision() -> str:
    result = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 else "unknown"


def learner_layout_args() -> dict[str, str]:
    """The learner image's paths and account, from the contract, as the Dockerfile's build args."""
    return {
        "LEARNER_USER": learner.USER,
        "LEARNER_UID": str(learner.UID),
        "LEARNER_HOME": learner.HOME,
        "VENV": learner.VENV,
        "DATA_ROOT": learner.DATA_ROOT,
        "REGISTRY": f"{learner.DATA_ROOT}/{learner.REGISTRY_FILE}",
        "LESSONS_DIR": learner.LESSONS_DIR,
        "WORK_FOLDER": learner.WORK_FOLDER,
        "SERVER_PORT": str(learner.SERVER_PORT),
    }


def fetch_image_data(
    context: Path,
    registry_file: Path,
    mirror: str | None,
    ca_bundle: Path | None,
    console: Console,
) -> Path:
    """Every dataset of the registry, fetched once (from the mirror when given) and verified by hash,
    into the build context's folder for this registry; returns that folder. A file that does not match
    its hash stops here, before any build (a DataError naming it)."""
    from dlworkshop.data.fetch import fetch
    from dlworkshop.data.registry import load_registry

    text = registry_file.read_bytes()
    folder = context / IMAGE_DATA / hashlib.sha256(text).hexdigest()[:16]
    console.print(f"fetching the datasets into {folder}")
    fetch(load_registry(registry_file), folder, mirror=mirror, ca_bundle=ca_bundle)
    (folder / learner.REGISTRY_FILE).write_bytes(text)
    # Fixed modes (whatever the umask): the image's copy is read-only for the learner, and the
    # layer's checksum depends on the content alone.
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return folder


def build_command(
    client: str,
    tag: str,
    dockerfile: Path,
    context: Path,
    build_args: dict[str, str],
    ca_bundle: Path | None,
    target: str | None = None,
    no_cache: bool = False,
) -> list[str]:
    command = [client, "build", "--progress", "plain", "--file", str(dockerfile), "--tag", tag]
    for name, value in {"GIT_REVISION": git_revision(), **build_args}.items():
        command += ["--build-arg", f"{name}={value}"]
    if ca_bundle:
        command += ["--secret", f"id=ca_bundle,src={ca_bundle}"]
    if target:
        command += ["--target", target]
    if no_cache:
        command.append("--no-cache")
    return [*command, str(context)]


def run_build(command: list[str], console: Console, title: str, ca_bundle: Path | None = None) -> None:
    """Run a BuildKit build, showing the current step; on failure, the log's last lines and what
    failed (a certificate not trusted, a host not reached, a hash mismatch) with its fix.
    `ca_bundle`: the bundle the build trusted, named in a certificate failure's fix."""
    log: collections.deque[str] = collections.deque(maxlen=2000)
    env = {**os.environ, "DOCKER_BUILDKIT": "1"}
    with console.status(title) as status:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        assert process.stdout is not None
        for line in process.stdout:
            log.append(line.rstrip())
            step = STEP.match(line)
            if step and not step["what"].startswith("sha256"):
                status.update(f"{title}: [{step['stage']}] {step['what'][:90]}")
        process.wait()
    if process.returncode != 0:
        failure = diagnose(log)
        tail = list(log)[-25:]
        raise WorkshopError(
            "\n".join(
                [f"{title} failed; the build's last lines:", *tail, f"{title} failed{failure.summary()}"]
            ),
            fix=failure.hint(ca_bundle),
        )


def build_learner_image(
    tag: str,
    variant: Variant = "cpu",
    base_image: str | None = None,
    ca_bundle: CaBundleSetting = "auto",
    data_mirror: str | None = None,
    registry: Path | None = None,
    target: str | None = None,
    no_cache: bool = False,
    console: Console | None = None,
    context: Path = REPO,
) -> str:
    """Build the learner image from `context` (this checkout; a test passes a copy). `target`
    "environment" builds the locked packages alone, without fetching any data. `ca_bundle`: what
    the data downloads and every build step trust (auto: this host's bundle; dlworkshop.image.ca_bundle)."""
    console = console or Console(stderr=True)
    client = require_engine()
    trusted = resolve_ca_bundle(ca_bundle)
    registry_file = registry or context / "lessons" / "datasets.yaml"
    if not registry_file.is_file():
        raise WorkshopError(f"registry {registry_file} does not exist")
    build_args = {"VARIANT": variant, "LOCK_SHA256": lock_sha256(variant), **learner_layout_args()}
    if base_image:
        build_args["BASE_IMAGE"] = base_image
    if target != "environment":
        data = fetch_image_data(context, registry_file, data_mirror, trusted, console)
        build_args["DATA_FOLDER"] = str(data.relative_to(context))
    command = build_command(
        client, tag, context / "Dockerfile", context, build_args, trusted, target, no_cache
    )
    run_build(command, console, f"building {tag} ({variant})", trusted)
    console.print(f"[green]built[/] {tag}")
    return tag


def build_hub_image(
    tag: str,
    base_image: str | None = None,
    ca_bundle: CaBundleSetting = "auto",
    console: Console | None = None,
) -> str:
    """The hub image (hub/Dockerfile): JupyterHub, DockerSpawner, culler, proxy, the settings model."""
    console = console or Console(stderr=True)
    client = require_engine()
    trusted = resolve_ca_bundle(ca_bundle)
    build_args = {"BASE_IMAGE": base_image} if base_image else {}
    command = build_command(client, tag, REPO / "hub" / "Dockerfile", REPO, build_args, trusted)
    run_build(command, console, f"building {tag}", trusted)
    console.print(f"[green]built[/] {tag}")
    return tag
