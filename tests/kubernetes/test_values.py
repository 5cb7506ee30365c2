"""The Z2JH values `dlworkshop render z2jh` writes: check (a) against the pinned chart's schema,
what the values say for each example, and the hub's own configuration from the same file."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dlworkshop.kubernetes.chart import Chart, merge_values, schema_problems
from dlworkshop.kubernetes.checks import values_problems
from dlworkshop.kubernetes.manifests import chart_spawner_config, learner_pods, openapi_problems
from dlworkshop.kubernetes.mapping import kubespawner_traits
from dlworkshop.kubernetes.values import (
    HUB_CONFIG_PATH,
    existing_secret_manifest,
    read_hub_files,
    render_z2jh,
)
from dlworkshop.settings import load_settings, parse_settings
from tests.conftest import REPO
from tests.kubernetes.conftest import RenderedExample

pytestmark = pytest.mark.kubernetes

# What each example must ask of the cluster, written out by hand from the example files.
PLACEHOLDERS = {
    "cpu.yaml": (30, {"cpu": "1", "memory": "3Gi"}),
    "gpu-whole.yaml": (16, {"cpu": "2", "memory": "16Gi", "nvidia.com/gpu": "1"}),
    "gpu-shared.yaml": (24, {"cpu": "2", "memory": "16Gi", "nvidia.com/gpu": "1"}),
    "mig.yaml": (7, {"cpu": "4", "memory": "24Gi", "nvidia.com/mig-1g.10gb": "1"}),
}


def test_every_example_passes_the_charts_schema(example: RenderedExample, chart: Chart) -> None:
    assert schema_problems(example.values, chart) == []


def test_every_example_passes_the_projects_own_check(example: RenderedExample) -> None:
    assert values_problems(example.values) == []


def test_placeholders_hold_a_learners_room_gpu_included(example: RenderedExample) -> None:
    replicas, amounts = PLACEHOLDERS[example.path.name]
    scheduling = example.values["scheduling"]
    assert scheduling["userPlaceholder"]["replicas"] == replicas
    assert scheduling["userPlaceholder"]["resources"] == {"requests": amounts, "limits": amounts}
    # Without priorities the scheduler never evicts a placeholder for a learner.
    assert scheduling["podPriority"]["enabled"] is True


def test_the_image_pullers_reach_the_gpu_nodes(example: RenderedExample, chart: Chart) -> None:
    merged = merge_values(chart.defaults, example.values)
    assert merged["prePuller"]["hook"]["enabled"] and merged["prePuller"]["continuous"]["enabled"]
    # The chart gives both pullers singleuser.extraTolerations (and the node selector).
    pulled_with = merged["singleuser"].get("extraTolerations", [])
    if example.settings.resources.gpu.policy == "none":
        assert pulled_with == []
    else:
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pulled_with


def test_learners_cannot_reach_the_cloud_metadata_server(example: RenderedExample, chart: Chart) -> None:
    singleuser = merge_values(chart.defaults, example.values)["singleuser"]
    assert singleuser["networkPolicy"]["enabled"] is True
    assert singleuser["networkPolicy"]["egressAllowRules"]["cloudMetadataServer"] is False
    assert singleuser["cloudMetadata"] == {"blockWithIptables": True, "ip": "169.254.169.254"}


def test_the_hub_culls_and_the_chart_makes_the_prewarm_token(example: RenderedExample) -> None:
    """One culler: the hub's own, from `culling` (tests/kubernetes/test_hub_under_the_chart.py);
    the chart's would be a second. The chart makes and keeps the pre-warm service's API token."""
    assert example.values["cull"] == {"enabled": False}
    assert example.values["hub"]["services"] == {"prewarm": {}}


def test_work_storage_follows_the_settings(example: RenderedExample) -> None:
    storage = example.values["singleuser"]["storage"]
    assert storage["type"] == "dynamic"
    assert storage["homeMountPath"] == "/home/jovyan/work"
    assert storage["capacity"] == ("5Gi" if example.path.name == "cpu.yaml" else "10Gi")


def test_the_hub_runs_this_projects_image_and_reads_the_same_workshop_yaml(example: RenderedExample) -> None:
    hub = example.values["hub"]
    assert hub["image"] == {
        "name": "registry.example.org/dlworkshop/hub",
        "tag": "2026.1",
        "pullPolicy": "IfNotPresent",
    }
    assert hub["extraEnv"]["DLWORKSHOP_CONFIG"] == HUB_CONFIG_PATH
    if example.settings.kubernetes.existing_secret is None:
        mounted = hub["extraFiles"]["workshop-yaml"]
        assert mounted["mountPath"] == HUB_CONFIG_PATH
        text = mounted["stringData"]
    else:  # from the operator's Secret, which the chart mounts as the volume existing-secret
        assert (
            "extraFiles" not in hub and hub["existingSecret"] == example.settings.kubernetes.existing_secret
        )
        assert hub["extraVolumeMounts"] == [
            {
                "name": "existing-secret",
                "mountPath": HUB_CONFIG_PATH,
                "subPath": "workshop.yaml",
                "readOnly": True,
            }
        ]
        secret = existing_secret_manifest(example.settings, read_hub_files(example.settings))
        text = secret["stringData"]["workshop.yaml"]
    assert parse_settings(text) == example.settings


def test_the_hub_backend_and_the_chart_configure_kubespawner_alike(
    example: RenderedExample, chart: Chart
) -> None:
    """What the chart sets from the values is what kubespawner_traits gives the hub's backend."""
    config = chart_spawner_config(merge_values(chart.defaults, example.values))
    for name, wanted in kubespawner_traits(example.settings).items():
        section = config.KubeSpawner if name in config.KubeSpawner else config.Spawner
        assert name in section, name
        if name == "tolerations":
            # The chart puts its user-pod tolerations first.
            assert section[name][-len(wanted) :] == wanted
        else:
            assert section[name] == wanted, name


def test_every_default_of_workshop_yaml_renders_and_passes_every_check(chart: Chart) -> None:
    settings = parse_settings("auth: {mode: shared-code, access_code: x}\nhub: {backend: kubernetes}\n")
    values = render_z2jh(settings).values
    assert schema_problems(values, chart) == []
    assert values_problems(values) == []
    (pod,) = learner_pods(values, chart)
    for version in ("1.28", "1.37"):
        assert openapi_problems(pod.pod, version) == [] and openapi_problems(pod.pvc, version) == []


def test_an_accounts_workshop_carries_its_hashed_accounts_to_the_hub(tmp_path: Path, chart: Chart) -> None:
    (tmp_path / "accounts.csv").write_text("username,password_hash\nada,$2b$12$abc\n")
    config = tmp_path / "workshop.yaml"
    config.write_text(
        "auth: {mode: accounts, accounts_file: accounts.csv}\n"
        "hub: {backend: kubernetes, tls: {mode: files, certificate: tls.crt, key: tls.key}}\n"
    )
    (tmp_path / "tls.crt").write_text("CERTIFICATE\n")
    (tmp_path / "tls.key").write_text("KEY\n")
    values = render_z2jh(load_settings(config)).values
    accounts = values["hub"]["extraFiles"]["accounts-csv"]
    assert accounts["mountPath"] == "/srv/jupyterhub/accounts.csv"
    assert "ada," in accounts["stringData"]
    assert values["proxy"]["https"] == {
        "enabled": True,
        "hosts": [],
        "type": "manual",
        "manual": {"cert": "CERTIFICATE\n", "key": "KEY\n"},
    }
    assert schema_problems(values, chart) == []


def dlworkshop(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "dlworkshop", *args], capture_output=True, text=True, cwd=cwd, env=env
    )


def test_render_writes_checked_private_values_with_the_helm_command(tmp_path: Path) -> None:
    out = tmp_path / "values.yaml"
    result = dlworkshop("render", "z2jh", "-c", "examples/kubernetes/mig.yaml", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "checked against chart 4.4.0's schema and KubeSpawner 7.0.0's options" in result.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    text = out.read_text()
    assert (
        "# helm upgrade --install dlworkshop jupyterhub --repo https://hub.jupyter.org/helm-chart/ --version 4.4.0"
        in text
    )
    values = yaml.safe_load(text)
    assert values == render_z2jh(load_settings(REPO / "examples/kubernetes/mig.yaml")).values


def test_render_refuses_a_docker_workshop_and_an_unchecked_chart_in_one_line() -> None:
    docker = dlworkshop("render", "z2jh", "-c", "examples/cpu-vm.yaml")
    assert docker.returncode == 2
    assert "hub.backend: set it to kubernetes" in docker.stderr and "Traceback" not in docker.stderr
    unchecked = dlworkshop("render", "z2jh", "-c", "examples/kubernetes/cpu.yaml", "--chart-version", "3.3.8")
    assert unchecked.returncode == 2
    assert "--chart-version): 3.3.8 is not one of 4.4.0" in unchecked.stderr
    assert "Traceback" not in unchecked.stderr


def test_render_without_the_extra_says_which_extra_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from dlworkshop.cli import render

    monkeypatch.setattr(render, "_checks_installed", lambda: False)
    render.z2jh(
        config=REPO / "examples/kubernetes/cpu.yaml",
        out=tmp_path / "v.yaml",
        chart_version=None,
        manifests=None,
        secret_out=None,
        chart_path=None,
        check=None,
    )
    assert "NOT checked: install dlworkshop[kubernetes]" in capsys.readouterr().err
    assert "NOT checked" in (tmp_path / "v.yaml").read_text().splitlines()[1]


def test_render_writes_the_learner_pod_and_pvc_for_a_dry_run_on_the_cluster(tmp_path: Path) -> None:
    result = dlworkshop(
        "render",
        "z2jh",
        "-c",
        "examples/kubernetes/gpu-shared.yaml",
        "--out",
        str(tmp_path / "values.yaml"),
        "--manifests",
        str(tmp_path / "manifests"),
    )
    assert result.returncode == 0, result.stderr
    assert (
        "Wrote 2 manifests" in result.stderr and "checked against Kubernetes 1.28 and 1.37" in result.stderr
    )
    pod = yaml.safe_load((tmp_path / "manifests" / "pod-gpu-shared-1-in-6.yaml").read_text())
    pvc = yaml.safe_load((tmp_path / "manifests" / "pvc-gpu-shared-1-in-6.yaml").read_text())
    assert pod["kind"] == "Pod" and pvc["kind"] == "PersistentVolumeClaim"
    # The chart's own images carry the published chart's tag, not git's placeholder.
    assert [c["image"] for c in pod["spec"]["initContainers"]] == [
        "quay.io/jupyterhub/k8s-network-tools:4.4.0"
    ]
