"""scripts/refresh-z2jh-chart against a small git repository laid out like the chart's: the data
files, and the released chart made from the tag as the chart's release makes it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

pytestmark = pytest.mark.kubernetes

CHART_YAML = 'apiVersion: v2\nname: jupyterhub\nversion: 0.0.1-set.by.chartpress\nappVersion: "5.5.0"\nkubeVersion: ">=1.28.0-0"\n'
REQUIREMENTS = "jupyterhub==5.5.0\n    # via x\njupyterhub-kubespawner==7.0.0\nkubernetes-asyncio==36.1.0\n"
CHARTPRESS_YAML = """\
charts:
  - name: jupyterhub
    imagePrefix: quay.io/jupyterhub/k8s-
    images:
      hub:
        valuesPath: hub.image
      hub-slim:
        contextPath: images/hub
"""
# Two images: the hub's, which chartpress tags, and the proxy's, which it leaves alone.
VALUES_YAML = """\
hub:
  image:
    name: quay.io/jupyterhub/k8s-hub
    tag: "set-by-chartpress"  # chartpress
proxy:
  chp:
    image: {name: quay.io/jupyterhub/configurable-http-proxy, tag: "5.2.0"}
"""
# Descriptions at each level reached through `properties` go; a property named `description`
# and a description under `items` stay, as the chart's tools/generate-json-schema.py leaves them.
SCHEMA_YAML = """\
type: object
description: the chart's values
properties:
  hub:
    type: object
    description: the hub
    properties:
      description: {type: string, description: a setting named description}
  names:
    type: array
    items: {type: string, description: a name}
"""
PACKAGED_SCHEMA = {
    "type": "object",
    "properties": {
        "hub": {"type": "object", "properties": {"description": {"type": "string"}}},
        "names": {"type": "array", "items": {"type": "string", "description": "a name"}},
    },
}
HELMIGNORE = "# packaged without\nvalues.schema.yaml\n*.bak\nci/\n"
# The chart's other files: the ones .helmignore (or Helm's own rule on hidden templates) leaves out.
CHART_CODE = {
    "templates/hub.yaml": "kind: ConfigMap\napiVersion: v1\nmetadata: {name: hub}\ndata: {tag: {{ .Values.hub.image.tag | quote }}}\n",
    "templates/.hidden.yaml": "not: packaged\n",
    "files/hub/jupyterhub_config.py": "c = get_config()  # noqa\n",
    "ci/test-values.yaml": "not: packaged\n",
    "notes.bak": "not packaged\n",
}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def commit_release(repo: Path, version: str, values: str = VALUES_YAML) -> None:
    files = {
        "jupyterhub/values.yaml": f"{values}# {version}\n",
        "jupyterhub/values.schema.yaml": SCHEMA_YAML,
        "jupyterhub/Chart.yaml": CHART_YAML,
        "jupyterhub/.helmignore": HELMIGNORE,
        **{f"jupyterhub/{path}": text for path, text in CHART_CODE.items()},
        "chartpress.yaml": CHARTPRESS_YAML,
        "images/hub/requirements.txt": REQUIREMENTS,
        "LICENSE": "BSD 3-Clause License\n",
    }
    for path, text in files.items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", version)
    git(repo, "tag", version)


@pytest.fixture
def chart_repository(tmp_path: Path) -> Path:
    repo = tmp_path / "z2jh"
    repo.mkdir()
    git(repo, "init", "-q")
    for version in ("4.3.5", "4.4.0", "5.0.0-beta.1"):
        commit_release(repo, version)
    return repo


def refresh(repo: Path, dest: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REPO / "scripts" / "refresh-z2jh-chart"), str(repo), "--dest", str(dest), *args],
        capture_output=True,
        text=True,
    )


def test_the_newest_release_of_the_major_is_copied_with_its_source(
    chart_repository: Path, tmp_path: Path
) -> None:
    dest = tmp_path / "chart"
    result = refresh(chart_repository, dest)
    assert result.returncode == 0, result.stderr
    assert sorted(path.name for path in (dest / "4.4.0").iterdir()) == [
        "Chart.yaml",
        "LICENSE",
        "README.md",
        "jupyterhub",
        "source.yaml",
        "values.schema.yaml",
        "values.yaml",
    ]
    assert (dest / "4.4.0" / "values.yaml").read_text() == f"{VALUES_YAML}# 4.4.0\n"
    assert (dest / "4.4.0" / "values.schema.yaml").read_text() == SCHEMA_YAML
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


def test_the_released_chart_is_made_from_the_tag_as_the_charts_release_makes_it(
    chart_repository: Path, tmp_path: Path
) -> None:
    dest = tmp_path / "chart"
    (dest / "4.4.0" / "jupyterhub").mkdir(parents=True)
    (dest / "4.4.0" / "jupyterhub" / "stale.yaml").write_text("from an older refresh\n")
    result = refresh(chart_repository, dest, "--tag", "4.4.0")
    assert result.returncode == 0, result.stderr
    released = dest / "4.4.0" / "jupyterhub"
    assert sorted(str(path.relative_to(released)) for path in released.rglob("*") if path.is_file()) == [
        ".helmignore",
        "Chart.yaml",
        "files/hub/jupyterhub_config.py",
        "templates/hub.yaml",
        "values.schema.json",
        "values.yaml",
    ]
    # chartpress tags the images chartpress.yaml lists, and nothing else of the file changes.
    assert (released / "values.yaml").read_text() == (
        f"{VALUES_YAML}# 4.4.0\n".replace('tag: "set-by-chartpress"', 'tag: "4.4.0"')
    )
    assert json.loads((released / "values.schema.json").read_text()) == PACKAGED_SCHEMA
    chart_yaml = (released / "Chart.yaml").read_text()
    assert yaml.safe_load(chart_yaml) == {
        **yaml.safe_load(CHART_YAML),
        "version": "4.4.0",
        "annotations": {
            "artifacthub.io/images": "- image: quay.io/jupyterhub/configurable-http-proxy:5.2.0\n"
            "  name: configurable-http-proxy\n"
            "- image: quay.io/jupyterhub/k8s-hub:4.4.0\n"
            "  name: k8s-hub\n"
        },
    }
    assert chart_yaml.startswith("annotations:\n  artifacthub.io/images: |\n")  # `helm package`'s layout
    for path in (".helmignore", "templates/hub.yaml", "files/hub/jupyterhub_config.py"):
        assert (released / path).read_text() == (chart_repository / "jupyterhub" / path).read_text()
    readme = (dest / "4.4.0" / "README.md").read_text()
    commit = git(chart_repository, "rev-parse", "4.4.0^{commit}")
    assert f"at tag `4.4.0` (commit `{commit}`)" in readme
    assert "## `jupyterhub/`: the released chart" in readme
    assert "(`hub.image`) reads `4.4.0` where git has `set-by-chartpress`" in readme
    assert (
        "left out as the chart's `.helmignore` says: `ci/test-values.yaml`, `notes.bak`, `templates/.hidden.yaml`, `values.schema.yaml`."
        in readme
    )

    import helm_python

    with helm_python.Chart.load(released) as loaded:
        assert (loaded.name, loaded.version) == ("jupyterhub", "4.4.0")
        assert loaded.schema == PACKAGED_SCHEMA
        rendered = loaded.render({}, name="release", namespace="workshop", is_install=True)
    assert yaml.safe_load(rendered["jupyterhub/templates/hub.yaml"])["data"] == {"tag": "4.4.0"}


def test_a_placeholder_chartpress_leaves_alone_stops_the_refresh(tmp_path: Path) -> None:
    """An image tag `set-by-chartpress` outside chartpress.yaml's valuesPaths stays so in the
    release; the script, which writes the tags into the text, says so instead of writing it."""
    repo = tmp_path / "z2jh"
    repo.mkdir()
    git(repo, "init", "-q")
    singleuser = "singleuser:\n  image:\n    name: quay.io/jupyterhub/k8s-singleuser-sample\n    tag: set-by-chartpress\n"
    commit_release(repo, "4.4.0", VALUES_YAML + singleuser)
    result = refresh(repo, tmp_path / "chart")
    assert result.returncode == 1
    assert "a placeholder outside chartpress.yaml's valuesPaths" in result.stderr
    assert "Traceback" not in result.stderr
