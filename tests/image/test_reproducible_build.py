"""Two builds from the same lock give the same Python environment; the CUDA lock resolves (the CUDA
image itself is built and checked in test_learner_variants.py)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import docker_cli

pytestmark = [pytest.mark.docker, pytest.mark.image, pytest.mark.slow]

# Bytecode caches are left out: CPython's marshal output is not byte-stable across runs.
MANIFEST = (
    "pip freeze --all; cd /opt/venv && find . -type f -not -path '*/__pycache__/*' -print0"
    " | sort -z | xargs -0 sha256sum | sha256sum"
)


def environment_manifest(tag: str) -> str:
    result = subprocess.run(
        [
            docker_cli(),
            "run",
            "--rm",
            "--entrypoint",
            "bash",
            tag,
            "-c",
            f"PATH=/opt/venv/bin:$PATH; {MANIFEST}",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def test_two_builds_from_the_same_lock_install_identical_environments(
    base_image: str, learner_image: str
) -> None:
    from dlworkshop.image.build import build_learner_image

    first = build_learner_image("dlworkshop/learner-env:first", base_image=base_image, target="environment")
    second = build_learner_image(
        "dlworkshop/learner-env:second",
        base_image=base_image,
        target="environment",
        no_cache=True,
    )
    try:
        first_manifest, second_manifest = environment_manifest(first), environment_manifest(second)
        assert re.search(r"^tensorflow[-_]cpu==2\.21\.0$", first_manifest, flags=re.MULTILINE)
        assert first_manifest == second_manifest
    finally:
        subprocess.run([docker_cli(), "rmi", "-f", "dlworkshop/learner-env:second"], capture_output=True)


def test_the_cuda_lock_resolves_with_the_pip_cuda_wheels(tmp_path: Path) -> None:
    """Re-locked as `dlworkshop image lock` does it (the shipped pins preferred, the index as of the
    lock's recorded moment): the same pins, TensorFlow with NVIDIA's CUDA wheels, hashed."""
    from dlworkshop.image.lock import learner_lock_file, lock, resolved_at

    shipped = learner_lock_file("cuda")
    relocked = tmp_path / "cuda.lock"
    shutil.copy2(shipped, relocked)
    resolved = lock("cuda", output=relocked).read_text()
    assert resolved_at(relocked) == resolved_at(shipped) is not None
    assert pinned(resolved) == pinned(shipped.read_text()), (
        "the CUDA lock is stale: run `dlworkshop image lock`"
    )
    assert "\ntensorflow==2.21.0" in resolved
    assert "nvidia-cudnn-cu12==" in resolved and "--hash=sha256:" in resolved


def pinned(lock_text: str) -> set[str]:
    return set(re.findall(r"^([A-Za-z0-9][^\s]*==[^\s]+)", lock_text, flags=re.MULTILINE))
