"""`dlworkshop image base`: a Debian base image with Python, built with no registry at all.

debootstrap fetches Debian from a package mirror into a folder; `docker import` turns the folder
into an image. Air-gapped centres point --mirror at their internal Debian mirror.
"""

from __future__ import annotations

import collections
import hashlib
import re
import shutil
import subprocess
import tempfile
import time
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


# debootstrap's own lines about each package: `I: Retrieving libc6 2.36-9`, `I: Unpacking libc6:amd64...`.
_FETCHED = re.compile(r"^I: (?P<verb>Retrieving|Validating) (?P<package>[a-z0-9][a-z0-9+.-]*) \S+$")
_INSTALLED = re.compile(
    r"^I: (?P<verb>Extracting|Unpacking|Configuring) (?P<package>[a-z0-9][a-z0-9+.:-]*)\.\.\.$"
)


class DebootstrapProgress:
    """Reads debootstrap's output line by line: the status to show now, and a line to keep when a
    phase ends (retrieving, extracting, unpacking, configuring), with how many packages it did."""

    def __init__(self, suite: str) -> None:
        self.suite = suite
        self.phase: str | None = None
        self.packages: set[str] = set()
        self.done = 0
        self.started = self.phase_started = time.monotonic()

    def feed(self, line: str) -> tuple[str | None, str | None]:
        """(status, finished-phase line) for one line of output; None where nothing changes."""
        line = line.rstrip()
        fetched, installed = _FETCHED.match(line), _INSTALLED.match(line)
        match = fetched or installed
        if match is None:
            return (f"debootstrap {self.suite}: {line[3:][:80]}" if line.startswith("I: ") else None), None
        verb, package = match["verb"], match["package"].split(":")[0]
        phase = "retrieving" if verb in ("Retrieving", "Validating") else verb.lower()
        finished = self._enter(phase)
        if fetched:
            self.packages.add(package)
            return (
                f"debootstrap {self.suite}: {verb.lower()} {package} ({len(self.packages)} packages so far)",
                finished,
            )
        self.done += 1
        total = max(len(self.packages), self.done)
        return f"debootstrap {self.suite}: {phase} {package} ({self.done}/{total})", finished

    def _enter(self, phase: str) -> str | None:
        if phase == self.phase:
            return None
        finished = self.finish()
        self.phase, self.done, self.phase_started = phase, 0, time.monotonic()
        return finished

    def finish(self) -> str | None:
        """The line for the phase under way, if any (called at the end as well)."""
        if self.phase is None:
            return None
        count = len(self.packages) if self.phase == "retrieving" else self.done
        past = {"retrieving": "retrieved", "extracting": "extracted"}.get(
            self.phase, self.phase.removesuffix("ing") + "ed"
        )
        return f"debootstrap {self.suite}: {past} {count} packages in {time.monotonic() - self.phase_started:.0f} s"


def run_debootstrap(command: list[str], suite: str, console: Console) -> None:
    """Run debootstrap, showing the package it is at and a line per finished phase (it takes
    minutes); on failure, one error with its last lines."""
    progress = DebootstrapProgress(suite)
    tail: collections.deque[str] = collections.deque(maxlen=8)
    with console.status(f"debootstrap {suite}: starting (a few minutes)") as status:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert process.stdout is not None
        for line in process.stdout:
            tail.append(line.rstrip())
            shown, finished = progress.feed(line)
            if finished:
                console.print(finished)
            if shown:
                status.update(shown)
        process.wait()
    finished = progress.finish()
    if process.returncode != 0:
        raise WorkshopError(
            "debootstrap failed:\n" + "\n".join(tail), fix=f"check that {command[-1]} is reachable"
        )
    if finished:
        console.print(finished)
    console.print(f"debootstrap {suite}: done in {time.monotonic() - progress.started:.0f} s")


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
        console.print(f"building the base image {tag}: debootstrap {suite} from {mirror} (a few minutes)")
        command = [
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(PACKAGES)}",
            suite,
            str(rootfs),
            mirror,
        ]
        run_debootstrap(command, suite, console)
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
