"""`dlworkshop image build`: the learner image from the root Dockerfile, with progress."""

from __future__ import annotations

import collections
import contextlib
import functools
import hashlib
import http.server
import os
import re
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from rich.console import Console

from dlworkshop.errors import WorkshopError
from dlworkshop.image.docker import require_engine

REPO = Path(__file__).resolve().parents[2]
Variant = Literal["cpu", "cuda"]
STEP = re.compile(r"^#\d+ \[(?P<stage>[^\]]+)\] (?P<what>.*)$")


def lock_file(variant: Variant) -> Path:
    return REPO / "image" / f"requirements-{variant}.lock"


def lock_sha256(variant: Variant) -> str:
    return hashlib.sha256(lock_file(variant).read_bytes()).hexdigest()


def git_revision() -> str:
    result = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 else "unknown"


@contextlib.contextmanager
def _served(mirror: str | None) -> Iterator[str | None]:
    """A folder mirror is served on 127.0.0.1 for the build's fetch step (one code path for both)."""
    if mirror is None or "://" in mirror:
        yield mirror
        return
    if not Path(mirror).is_dir():
        raise WorkshopError(f"the data mirror folder {mirror} does not exist")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=mirror))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def build_command(
    client: str,
    tag: str,
    variant: Variant,
    base_image: str | None,
    ca_bundle: Path | None,
    mirror_url: str | None,
    registry: Path | None,
    target: str | None = None,
    no_cache: bool = False,
    dockerfile: Path = REPO / "Dockerfile",
) -> list[str]:
    command = [client, "build", "--progress", "plain", "--file", str(dockerfile), "--tag", tag]
    command += ["--build-arg", f"GIT_REVISION={git_revision()}"]
    if dockerfile == REPO / "Dockerfile":
        command += ["--build-arg", f"VARIANT={variant}", "--build-arg", f"LOCK_SHA256={lock_sha256(variant)}"]
    if base_image:
        command += ["--build-arg", f"BASE_IMAGE={base_image}"]
    if ca_bundle:
        command += ["--secret", f"id=ca_bundle,src={ca_bundle}"]
    if registry:
        command += ["--secret", f"id=registry,src={registry}"]
    if mirror_url:
        command += ["--build-arg", f"DATA_MIRROR={mirror_url}"]
        if re.match(r"https?://(127\.|localhost)", mirror_url):
            command += ["--network", "host"]  # the mirror listens on this machine's loopback
    if target:
        command += ["--target", target]
    if no_cache:
        command.append("--no-cache")
    return [*command, str(REPO)]


def run_build(command: list[str], console: Console, title: str) -> None:
    """Run a BuildKit build, showing the current step; on failure, the log's last lines."""
    tail: collections.deque[str] = collections.deque(maxlen=25)
    env = {**os.environ, "DOCKER_BUILDKIT": "1"}
    with console.status(title) as status:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        assert process.stdout is not None
        for line in process.stdout:
            tail.append(line.rstrip())
            step = STEP.match(line)
            if step and not step["what"].startswith("sha256"):
                status.update(f"{title}: [{step['stage']}] {step['what'][:90]}")
        process.wait()
    if process.returncode != 0:
        raise WorkshopError(
            f"{title} failed; the build's last lines:\n" + "\n".join(tail),
            fix="read the lines above; a hash mismatch means the mirror's copy differs from the registry",
        )


def build_learner_image(
    tag: str,
    variant: Variant = "cpu",
    base_image: str | None = None,
    ca_bundle: Path | None = None,
    data_mirror: str | None = None,
    registry: Path | None = None,
    target: str | None = None,
    no_cache: bool = False,
    console: Console | None = None,
) -> str:
    console = console or Console(stderr=True)
    client = require_engine()
    if ca_bundle is not None and not ca_bundle.is_file():
        raise WorkshopError(f"CA bundle {ca_bundle} does not exist", fix="give the path of a PEM bundle")
    if registry is not None and not registry.is_file():
        raise WorkshopError(f"registry {registry} does not exist")
    with _served(data_mirror) as mirror_url:
        command = build_command(
            client, tag, variant, base_image, ca_bundle, mirror_url, registry, target, no_cache
        )
        run_build(command, console, f"building {tag} ({variant})")
    console.print(f"[green]built[/] {tag}")
    return tag


def build_hub_image(
    tag: str, base_image: str | None = None, ca_bundle: Path | None = None, console: Console | None = None
) -> str:
    """The hub image (hub/Dockerfile): JupyterHub, DockerSpawner, culler, proxy, the settings model."""
    console = console or Console(stderr=True)
    client = require_engine()
    command = build_command(
        client, tag, "cpu", base_image, ca_bundle, None, None, dockerfile=REPO / "hub" / "Dockerfile"
    )
    run_build(command, console, f"building {tag}")
    console.print(f"[green]built[/] {tag}")
    return tag
