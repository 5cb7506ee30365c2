"""`dlworkshop image base`: a Debian base image with Python, built with no registry at all.

debootstrap fetches Debian from a package mirror into a folder; `docker import` turns the folder
into an image. Air-gapped centres point --mirror at their internal Debian mirror.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

from rich.console import Console

from dlworkshop.errors import WorkshopError
from dlworkshop.image.docker import image_labels, require_engine

DEFAULT_TAG = "dlworkshop/base:bookworm"
DEFAULT_SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
# What the learner and hub images need from Debian; Python itself is Debian's 3.11.
PACKAGES = ("python3", "python3-venv", "python3-pip", "ca-certificates", "tini", "graphviz", "procps", "curl")
RECIPE_LABEL = "org.dlworkshop.base-recipe"


def recipe_hash(suite: str, mirror: str) -> str:
    recipe = f"{suite}\n{mirror}\n{' '.join(PACKAGES)}\nminbase\n"
    return hashlib.sha256(recipe.encode()).hexdigest()[:16]


def build_base(
    tag: str = DEFAULT_TAG,
    suite: str = DEFAULT_SUITE,
    mirror: str = DEFAULT_MIRROR,
    force: bool = False,
    console: Console | None = None,
) -> str:
    """Build (or reuse, when the recipe is unchanged) the base image; returns its tag."""
    console = console or Console(stderr=True)
    client = require_engine()
    recipe = recipe_hash(suite, mirror)
    labels = image_labels(client, tag)
    if labels is not None and labels.get(RECIPE_LABEL) == recipe and not force:
        console.print(f"base image {tag} is up to date")
        return tag
    if shutil.which("debootstrap") is None:
        raise WorkshopError("debootstrap is not installed", fix="apt-get install debootstrap")
    with tempfile.TemporaryDirectory(prefix="dlworkshop-base-") as scratch:
        rootfs = Path(scratch) / "rootfs"
        with console.status(f"debootstrap {suite} from {mirror} (a few minutes)"):
            result = subprocess.run(
                [
                    "debootstrap",
                    "--variant=minbase",
                    f"--include={','.join(PACKAGES)}",
                    suite,
                    str(rootfs),
                    mirror,
                ],
                capture_output=True,
                text=True,
            )
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).splitlines()[-5:])
            raise WorkshopError(f"debootstrap failed:\n{tail}", fix=f"check that {mirror} is reachable")
        # Smaller image; apt lists come back with `apt-get update`.
        for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
            shutil.rmtree(rootfs / leftover, ignore_errors=True)
            (rootfs / leftover).mkdir(parents=True, exist_ok=True)
        sources = rootfs / "etc/apt/sources.list"
        sources.write_text(f"deb {mirror} {suite} main\n")
        with console.status(f"importing {tag}"):
            tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
            imported = subprocess.run(
                [
                    client,
                    "import",
                    "--change",
                    f"LABEL {RECIPE_LABEL}={recipe}",
                    "--change",
                    "ENV LANG=C.UTF-8",
                    "--change",
                    'CMD ["/bin/bash"]',
                    "-",
                    tag,
                ],
                stdin=tar.stdout,
                capture_output=True,
                text=True,
            )
            tar.wait()
        if imported.returncode != 0:
            raise WorkshopError(f"docker import failed: {imported.stderr.strip()}")
    console.print(f"[green]built[/] base image {tag}")
    return tag
