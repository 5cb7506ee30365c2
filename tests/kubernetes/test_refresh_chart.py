"""scripts/refresh-z2jh-chart against a small git repository laid out like the chart's."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

pytestmark = pytest.mark.kubernetes

CHART_YAML = 'apiVersion: v2\nname: jupyterhub\nversion: 0.0.1-set.by.chartpress\nappVersion: "5.5.0"\nkubeVersion: ">=1.28.0-0"\n'
REQUIREMENTS = "jupyterhub==5.5.0\n    # via x\njupyterhub-kubespawner==7.0.0\nkubernetes-asyncio==36.1.0\n"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


@pytest.fixture
def chart_repository(tmp_path: Path) -> Path:
    repo = tmp_path / "z2jh"
    (repo / "jupyterhub").mkdir(parents=True)
    (repo / "images" / "hub").mkdir(parents=True)
    git(repo, "init", "-q")
    for version in ("4.3.5", "4.4.0", "5.0.0-beta.1"):
        (repo / "jupyterhub" / "values.yaml").write_text(
            f"hub: {{image: {{tag: set-by-chartpress}}}}\n# {version}\n"
        )
        (repo / "jupyterhub" / "values.schema.yaml").write_text("type: object\n")
        (repo / "jupyterhub" / "Chart.yaml").write_text(CHART_YAML)
        (repo / "images" / "hub" / "requirements.txt").write_text(REQUIREMENTS)
        (repo / "LICENSE").write_text("BSD 3-Clause License\n")
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", version)
        git(repo, "tag", version)
    return repo


def test_the_newest_release_of_the_major_is_copied_with_its_source(
    chart_repository: Path, tmp_path: Path
) -> None:
    dest = tmp_path / "chart"
    result = subprocess.run(
        [str(REPO / "scripts" / "refresh-z2jh-chart"), str(chart_repository), "--dest", str(dest)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert sorted(path.name for path in (dest / "4.4.0").iterdir()) == [
        "Chart.yaml",
        "LICENSE",
        "README.md",
        "source.yaml",
        "values.schema.yaml",
        "values.yaml",
    ]
    assert (dest / "4.4.0" / "values.yaml").read_text().endswith("# 4.4.0\n")
    source = yaml.safe_load((dest / "4.4.0" / "source.yaml").read_text())
    assert source == {
        "repository": "https://github.com/jupyterhub/zero-to-jupyterhub-k8s",
        "tag": "4.4.0",
        "commit": git(chart_repository, "rev-parse", "4.4.0^{commit}"),
        "kube_version": ">=1.28.0-0",
        "app_version": "5.5.0",
        "jupyterhub": "5.5.0",
        "jupyterhub-kubespawner": "7.0.0",
        "kubernetes-asyncio": "36.1.0",
    }
