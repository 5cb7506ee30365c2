"""binder/ gives mybinder the image's CPU environment: repo2docker renders a build that installs the
CPU lock, stages the data in postBuild and links it at start. (repo2docker's real build downloads
micromamba from a host unreachable here, so it is rendered, not built.)"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from dlworkshop.image.lock import LEARNER_EXCLUDED
from tests.conftest import REPO


def pins(text: str) -> dict[str, str]:
    """Each locked package with its version and hashes, as one string."""
    entries = re.split(r"\n(?=[a-z0-9])", text.split("\n\n", 1)[1])
    return {
        entry.split("==")[0]: " ".join(
            line.strip() for line in entry.splitlines() if line.strip() and "#" not in line
        )
        for entry in entries
        if "==" in entry
    }


def test_binder_requirements_are_the_cpu_lock() -> None:
    """Same versions and hashes as the image, plus only what the image leaves out on purpose."""
    binder = pins((REPO / "binder" / "requirements.txt").read_text())
    image = pins((REPO / "image" / "requirements-cpu.lock").read_text())
    assert {name: binder[name] for name in image} == image
    assert set(binder) - set(image) == set(LEARNER_EXCLUDED)
    assert (REPO / "binder" / "runtime.txt").read_text().strip() == "python-3.11"


def test_repo2docker_renders_the_binder_environment() -> None:
    repo2docker = shutil.which("repo2docker") or str(Path(sys.executable).with_name("repo2docker"))
    result = subprocess.run(
        [repo2docker, "--no-build", "--debug", str(REPO)], capture_output=True, text=True, timeout=300
    )
    rendered = result.stdout + result.stderr
    assert "python=3.11" in rendered
    assert 'pip install --no-cache-dir -r "binder/requirements.txt"' in rendered
    assert "RUN ./binder/postBuild" in rendered
    assert 'R2D_ENTRYPOINT="${REPO_DIR}/binder/start"' in rendered
