"""The offline base build (debootstrap, minutes) shows where it is: the package it is at, and a line
for each phase it finishes."""

from __future__ import annotations

import io
import os
import subprocess
from pathlib import Path

import pytest
from rich.console import Console

from dlworkshop.image.base import DebootstrapProgress
from tests.conftest import docker_cli

DEBOOTSTRAP_OUTPUT = """\
I: Target architecture can be executed
I: Retrieving InRelease
I: Checking Release signature
I: Retrieving Packages
I: Validating Packages
I: Resolving dependencies of required packages...
I: Checking component main on http://deb.debian.org/debian...
I: Retrieving libacl1 2.3.1-3
I: Validating libacl1 2.3.1-3
I: Retrieving libc6 2.36-9+deb12u9
I: Validating libc6 2.36-9+deb12u9
I: Retrieving tini 0.19.0-1
I: Validating tini 0.19.0-1
I: Chosen extractor for .deb packages: dpkg-deb
I: Extracting libacl1...
I: Extracting libc6...
I: Extracting tini...
I: Installing core packages...
I: Unpacking required packages...
I: Unpacking libacl1:amd64...
I: Unpacking libc6:amd64...
I: Configuring required packages...
I: Configuring libc6:amd64...
I: Configuring tini...
I: Base system installed successfully.
"""


def test_progress_names_the_package_and_counts_against_the_packages_retrieved() -> None:
    progress = DebootstrapProgress("bookworm")
    shown, kept = [], []
    for line in DEBOOTSTRAP_OUTPUT.splitlines():
        status, finished = progress.feed(line)
        shown.append(status)
        kept.append(finished)
    assert "debootstrap bookworm: retrieving libc6 (2 packages so far)" in shown
    assert "debootstrap bookworm: extracting tini (3/3)" in shown
    assert "debootstrap bookworm: unpacking libc6 (2/3)" in shown
    assert "debootstrap bookworm: Resolving dependencies of required packages..." in shown
    phases = [line.split(" in ")[0] for line in [*kept, progress.finish()] if line]
    assert phases == [
        "debootstrap bookworm: retrieved 3 packages",
        "debootstrap bookworm: extracted 3 packages",
        "debootstrap bookworm: unpacked 2 packages",
        "debootstrap bookworm: configured 2 packages",
    ]


FAKE_DEBOOTSTRAP = """#!/bin/bash
# Prints what debootstrap prints, makes a tiny root file system in its target ($4).
set -e
mkdir -p "$4/etc/apt"
echo 'fake' > "$4/etc/debian_version"
cat "$DLW_TEST_DEBOOTSTRAP_OUTPUT"
"""


@pytest.mark.docker
def test_the_base_build_prints_a_line_per_phase(
    docker_client: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dlworkshop.image.base import build_base

    fake = tmp_path / "bin" / "debootstrap"
    fake.parent.mkdir()
    fake.write_text(FAKE_DEBOOTSTRAP)
    fake.chmod(0o755)
    (tmp_path / "output.txt").write_text(DEBOOTSTRAP_OUTPUT)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("DLW_TEST_DEBOOTSTRAP_OUTPUT", str(tmp_path / "output.txt"))
    printed = io.StringIO()
    tag = "dlw-upstream/base-progress:test"
    try:
        build_base(tag=tag, force=True, console=Console(file=printed, width=200))
    finally:
        subprocess.run([docker_cli(), "rmi", "-f", tag], capture_output=True)
    lines = printed.getvalue().splitlines()
    assert any(line.startswith("debootstrap bookworm: retrieved 3 packages in ") for line in lines), lines
    assert any(line.startswith("debootstrap bookworm: configured 2 packages in ") for line in lines), lines
    assert any(line.startswith("debootstrap bookworm: done in ") for line in lines), lines
