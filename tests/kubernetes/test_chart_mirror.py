"""manifests.chart_spawner_config against the chart's own jupyterhub_config.py: from the released
chart kept in dlworkshop/kubernetes/chart/<version>/jupyterhub (or $DLWORKSHOP_Z2JH_CHART, the
folder or .tgz `helm pull` writes), or a git checkout of zero-to-jupyterhub-k8s
($DLWORKSHOP_Z2JH_CHECKOUT) at the pinned commit.

    DLWORKSHOP_Z2JH_CHART=path/to/jupyterhub-4.4.0.tgz pytest tests/kubernetes/test_chart_mirror.py
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import subprocess
import sys
import types
from typing import Any

import pytest
from traitlets.config import Config

from dlworkshop.kubernetes.chart import Chart, merge_values
from dlworkshop.kubernetes.helm import CHART_ENV, find_chart
from dlworkshop.kubernetes.manifests import NAMESPACE, RELEASE, chart_spawner_config
from tests.kubernetes.chart_hub import CHECKOUT_ENV, chart_own_files
from tests.kubernetes.conftest import RenderedExample

pytestmark = pytest.mark.kubernetes
NO_CHART = (
    "no released Z2JH chart here: dlworkshop/kubernetes/chart/<version>/jupyterhub is missing "
    f"(scripts/refresh-z2jh-chart writes it); or set {CHART_ENV} (or {CHECKOUT_ENV}, a git checkout "
    "of zero-to-jupyterhub-k8s) to compare the mirror with the chart's own jupyterhub_config.py"
)


@pytest.fixture(scope="session")
def chart_config_source(chart: Chart) -> str:
    files = chart_own_files(chart)
    if files is None:
        pytest.skip(NO_CHART)
    return files["jupyterhub_config.py"]


# Chart-side names the mirror derives from the release (the chart reads them from its ConfigMap).
NAMES = {
    "hub": "hub",
    "proxy-api": "proxy-api",
    "singleuser": "singleuser",
    "user-scheduler": f"{RELEASE}-user-scheduler",
    "priority": f"{RELEASE}-default-priority",
}


def stub_z2jh(values: dict[str, Any]) -> types.ModuleType:
    """The chart's z2jh helper module, reading the given values instead of the mounted Secret."""
    module = types.ModuleType("z2jh")

    def get_config(key: str, default: Any = None) -> Any:
        node: Any = values
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return copy.deepcopy(node)

    def set_config_if_not_none(parent: Any, name: str, key: str) -> None:
        if get_config(key) is not None:
            setattr(parent, name, get_config(key))

    module.get_config = get_config
    module.set_config_if_not_none = set_config_if_not_none
    module.get_name = NAMES.__getitem__
    module.get_name_env = lambda name, suffix="": "8081"
    module.get_secret_value = lambda key, default=None: "not-a-secret"
    return module


def run_chart_config(source: str, merged: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Config:
    from tornado.httpclient import AsyncHTTPClient

    values = {**merged, "Release": {"Name": RELEASE}, "Chart": {"Name": "jupyterhub"}}
    monkeypatch.setitem(sys.modules, "z2jh", stub_z2jh(values))
    # The chart's hub image has pycurl; the choice of HTTP client does not touch the Spawner.
    monkeypatch.setattr(AsyncHTTPClient, "configure", lambda *args, **kwargs: None)
    monkeypatch.setenv("POD_NAMESPACE", NAMESPACE)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the chart adds its own folder
    config = Config()
    # Up to the extra config files and hub.extraConfig, which are ours, not the chart's.
    chart_part = source.split("# load /usr/local/etc/jupyterhub/jupyterhub_config.d")[0]
    chart_file = "/usr/local/etc/jupyterhub/jupyterhub_config.py"  # where the chart mounts it
    exec(compile(chart_part, chart_file, "exec"), {"get_config": lambda: config, "__file__": chart_file})
    return config


def plain(value: Any) -> Any:
    async def serialise() -> Any:
        from kubernetes_asyncio.client import ApiClient

        async with ApiClient() as api:
            return api.sanitize_for_serialization(value)

    return json.loads(json.dumps(asyncio.run(serialise()), sort_keys=True))


def test_the_mirror_configures_kubespawner_as_the_chart_does(
    example: RenderedExample, chart: Chart, chart_config_source: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    merged = merge_values(chart.defaults, example.values)
    theirs = run_chart_config(chart_config_source, merged, monkeypatch)
    ours = chart_spawner_config(merged)
    for section in ("KubeSpawner", "Spawner"):
        # Labels: the chart reads a null nameOverride as a null label; the mirror as Helm's pods show it.
        skip = {"common_labels"}
        assert {k: plain(v) for k, v in theirs[section].items() if k not in skip} == {
            k: plain(v) for k, v in ours[section].items() if k not in skip
        }, section


def packaged_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """values.schema.yaml as the chart's release packages it into values.schema.json (its
    tools/generate-json-schema.py): the `description` of each level reached through `properties`
    dropped, nothing else."""
    packaged = {key: value for key, value in schema.items() if key != "description"}
    if "properties" in schema:
        packaged["properties"] = {
            name: packaged_schema(value) if isinstance(value, dict) else value
            for name, value in schema["properties"].items()
        }
    return packaged


def test_the_kept_data_files_are_the_pinned_charts(chart: Chart, chart_config_source: str) -> None:
    """chart/<version>/ (defaults, schema) is what Helm reads from the released chart (whose schema
    leaves out the descriptions); a checkout is at the pinned commit."""
    found = find_chart(chart)
    if found is not None:
        import helm_python

        with helm_python.Chart.load(found) as loaded:
            assert (loaded.name, loaded.version) == ("jupyterhub", chart.version)
            assert loaded.metadata["kubeVersion"] == chart.source["kube_version"]
            assert loaded.values == chart.defaults
            assert loaded.schema == packaged_schema(chart.schema)
        return
    commit = subprocess.run(
        ["git", "-C", os.environ[CHECKOUT_ENV], "rev-parse", f"{chart.source['tag']}^{{commit}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert commit == chart.source["commit"]
