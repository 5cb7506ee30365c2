"""The single-machine commands and a Kubernetes workshop: `up` and `deploy` refuse it in one line
naming `dlworkshop render z2jh`; `check` validates it and says why it checks no machine's capacity."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.kubernetes
EXAMPLE = REPO / "examples" / "kubernetes" / "gpu-whole.yaml"


def dlworkshop(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dlworkshop", *args], capture_output=True, text=True, timeout=60, cwd=REPO
    )


@pytest.mark.parametrize(
    "args", [["up", "-c", str(EXAMPLE)], ["deploy", "-i", "inventory.ini", "-c", str(EXAMPLE)]]
)
def test_up_and_deploy_refuse_a_kubernetes_workshop_naming_render_z2jh(args: list[str]) -> None:
    result = dlworkshop(*args)
    assert result.returncode == 2
    assert (
        f"dlworkshop {args[0]} runs the hub on Docker, and this workshop runs on Kubernetes" in result.stderr
    )
    assert "dlworkshop render z2jh -c workshop.yaml --out values.yaml" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_check_validates_a_kubernetes_workshop_without_this_machines_capacity() -> None:
    # A host far too small for 16 learners with a GPU each: irrelevant on a cluster.
    result = dlworkshop("check", "-c", str(EXAMPLE), "--host-cpus", "1", "--host-gpus", "0")
    assert result.returncode == 0, result.stderr
    assert "capacity: not checked: on Kubernetes the cluster's nodes carry the learners" in result.stdout
    assert "ok: 'Deep learning on GPUs', 16 learners" in result.stdout
    assert "host has" not in result.stdout  # no capacity table
