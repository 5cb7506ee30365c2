"""The hub the Zero to JupyterHub chart would run: the rendered hub.extraConfig, run after the chart's
own hub configuration the way the chart runs it (tests/kubernetes/chart_hub/), hands JupyterHub
this project's hub: the Kubernetes backend's spawner with the KubeSpawner options of the values,
the workshop's authenticator, one culler and the pre-warm service with the chart's token, and
nothing of what the chart owns (database, secrets, addresses) changed.

In the hub image (`docker run`, as the chart's hub pod runs it: UID 1000, the hub's volume over
/srv/jupyterhub), and in the test venv for the same configuration without Docker. With the
released chart at hand (kept in dlworkshop/kubernetes/chart/<version>/jupyterhub, or
$DLWORKSHOP_Z2JH_CHART, or a checkout in $DLWORKSHOP_Z2JH_CHECKOUT), the chart's own
jupyterhub_config.py and z2jh.py run instead of the stand-ins: in the image, and in the venv over a
folder laid out as the chart mounts its ConfigMap and Secrets.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from dlworkshop import contract
from dlworkshop.kubernetes.chart import Chart
from dlworkshop.kubernetes.helm import CHART_ENV
from dlworkshop.kubernetes.manifests import NAMESPACE, learner_pods
from dlworkshop.kubernetes.mapping import gpu_limits, kubespawner_traits
from dlworkshop.kubernetes.values import existing_secret_manifest, read_hub_files, render_z2jh
from dlworkshop.settings import Settings, parse_bytes, parse_settings
from hub.seats import seat_count
from tests.conftest import REPO
from tests.kubernetes.chart_hub import (
    COOKIE_SECRET,
    PREWARM_TOKEN,
    chart_own_files,
    hub_pod,
    inspect_on_host,
    run_in_image,
    run_on_host,
)
from tests.kubernetes.conftest import RenderedExample

pytestmark = pytest.mark.kubernetes

CONTAINER_PREFIX = os.environ.get("DLWORKSHOP_TEST_HUB_PREFIX", "dlworkshop") + "-z2jh-hub"
# The chart's user-pod tolerations (scheduling.userPods.tolerations), ahead of the GPU pool's.
CHART_TOLERATIONS = [
    {"key": "hub.jupyter.org/dedicated", "operator": "Equal", "value": "user", "effect": "NoSchedule"},
    {"key": "hub.jupyter.org_dedicated", "operator": "Equal", "value": "user", "effect": "NoSchedule"},
]
# A pod's parts that the workshop decides (the rest is KubeSpawner's and JupyterHub's own).
POD_SPEC_KEYS = (
    "nodeSelector",
    "tolerations",
    "securityContext",
    "volumes",
    "priorityClassName",
    "schedulerName",
)
CONTAINER_KEYS = ("image", "imagePullPolicy", "resources", "securityContext", "volumeMounts")


def existing_secret(settings: Settings) -> dict[str, str] | None:
    """The keys of the Secret kubernetes.existing_secret names, as `render --secret-out` writes it."""
    if settings.kubernetes.existing_secret is None:
        return None
    stringdata: dict[str, str] = existing_secret_manifest(settings, read_hub_files(settings))["stringData"]
    return stringdata


def projection(pod: dict[str, Any]) -> dict[str, Any]:
    (container,) = [c for c in pod["spec"]["containers"] if c["name"] == "notebook"]
    return {
        "spec": {key: pod["spec"].get(key) for key in POD_SPEC_KEYS},
        "container": {key: container.get(key) for key in CONTAINER_KEYS},
        "env": {
            e["name"]: e.get("value") for e in container["env"] if not e["name"].startswith("JUPYTERHUB_")
        },
    }


def assert_the_workshops_hub(
    report: dict[str, Any], settings: Settings, values: dict[str, Any], chart: Chart
) -> None:
    """What the hub would run with, for a workshop rendered to `values`."""
    hub, spawner = report["jupyterhub"], report["spawner"]

    # The spawner: KubeSpawner behind the admission queue, with the options of the values.
    assert spawner["class"] == "hub.backends.kubernetes.WorkshopKubeSpawner"
    assert {"kubespawner.spawner.KubeSpawner", "hub.spawning.WorkshopSpawner"} <= set(spawner["bases"])
    traits = spawner["traits"]
    for name, wanted in kubespawner_traits(settings).items():
        if name in ("mem_limit", "mem_guarantee"):
            assert traits[name] == parse_bytes(wanted), name
        elif name == "tolerations":
            assert traits[name] == [*CHART_TOLERATIONS, *wanted]
        else:
            assert traits[name] == wanted, name
    # JupyterHub's bound covers the queue; the admitted start has the workshop's.
    assert traits["start_timeout"] == contract.QUEUED_START_TIMEOUT
    assert traits["admitted_start_timeout"] == traits["http_timeout"] == settings.hub.start_timeout
    assert traits["start_capacity"] == 64  # auto on a cluster
    assert traits["namespace"] == NAMESPACE and traits["notebook_dir"] == contract.learner.WORK_FOLDER
    # The pod it asks for is the one the chart's KubeSpawner would (render z2jh's check (b)).
    (mirror,) = learner_pods(values, chart, username="learner-01")
    assert projection(spawner["pod"]) == projection(mirror.pod)
    assert spawner["init_containers"] == ["block-cloud-metadata"]
    assert_the_learner_pod_keeps_the_values_promises(spawner["pod"], settings, values)

    # The workshop's login.
    authenticator = report["authenticator"]
    assert authenticator["class"] == "hub.auth.SharedCodeAuthenticator"
    assert authenticator["traits"]["access_code"] == settings.auth.access_code.get_secret_value()
    assert authenticator["traits"]["seats"] == seat_count(settings)
    assert authenticator["traits"]["seats_file"] == str(contract.HUB_DATA / contract.SEATS_FILE)
    assert authenticator["traits"]["admin_users"] == sorted(settings.auth.admins)

    # One culler (the hub's own, the chart's is off) and the pre-warm service with the chart's token.
    services = {service["name"]: service for service in hub["services"]}
    assert set(services) == {contract.CULLER_SERVICE, contract.PREWARM_SERVICE}
    culler = services[contract.CULLER_SERVICE]["command"]
    assert culler[1:3] == ["-m", "jupyterhub_idle_culler"]
    assert f"--url={contract.HUB_API_URL_LOCAL}" in culler
    assert f"--timeout={settings.culling.idle_timeout}" in culler
    assert f"--cull-every={settings.culling.every}" in culler
    assert services[contract.PREWARM_SERVICE]["api_token"] == PREWARM_TOKEN
    roles = {role["name"]: role for role in hub["load_roles"]}
    assert set(roles) - {contract.ROOM_ROLE} == set(services)
    # Admins read the room view with their own tokens (no room service of the hub's own here).
    if settings.auth.admins:
        assert roles[contract.ROOM_ROLE] == {
            "name": contract.ROOM_ROLE,
            "scopes": [contract.ROOM_SCOPE],
            "users": sorted(settings.auth.admins),
        }

    # What the chart owns is the chart's: the database on its volume, its secrets, its addresses.
    assert hub["db_url"] == "sqlite:///jupyterhub.sqlite"
    assert hub["cookie_secret"] == COOKIE_SECRET
    assert hub["hub_connect_url"] == "http://hub:8081" and hub["hub_bind_url"] == "http://:8081"
    assert not {"cookie_secret_file", "bind_url", "hub_ip", "hub_port", "hub_connect_ip"} & set(hub)
    assert "auth_token" not in report["proxy"] and report["proxy"]["should_start"] is False
    assert hub["cleanup_servers"] is False and hub["concurrent_spawn_limit"] == 0
    assert hub["spawner_class"] == spawner["class"]
    assert hub["template_paths"] == [f"{report['hub_package']}/templates"]
    # Nothing written on the hub's volume while configuring: no secrets of the hub's own.
    assert [path for path in report["hub_volume"] if path != "accounts.csv"] == []


def assert_the_learner_pod_keeps_the_values_promises(
    pod: dict[str, Any], settings: Settings, values: dict[str, Any]
) -> None:
    """The GPU, the lock-down, the work folder, and the nodes the placeholders hold room on."""
    (container,) = [c for c in pod["spec"]["containers"] if c["name"] == "notebook"]
    resources = container["resources"]
    for name, count in gpu_limits(settings).items():
        assert resources["limits"][name] == resources["requests"][name] == str(count), name
    assert not {name for name in resources["limits"] if name.startswith("nvidia.com/")} - set(
        gpu_limits(settings)
    )
    security = container["securityContext"]
    assert security["runAsUser"] == contract.learner.UID and security["runAsNonRoot"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert contract.learner.WORK_FOLDER in [mount["mountPath"] for mount in container["volumeMounts"]]
    # The placeholders are scheduled with singleuser.nodeSelector (test_helm.py): the same nodes.
    assert pod["spec"].get("nodeSelector") == values["singleuser"].get("nodeSelector")
    if settings.resources.gpu.policy != "none":
        assert pod["spec"]["nodeSelector"], "a GPU learner's pod goes to the GPU pool"


def test_the_hub_image_runs_the_kubespawner_and_client_the_chart_pins(chart: Chart) -> None:
    from tests.package.test_install import pins

    locked = pins(REPO / "hub" / "requirements.lock")
    for package in ("jupyterhub-kubespawner", "kubernetes-asyncio"):
        assert locked[package] == chart.source[package], package
    assert "pycurl" in locked  # the chart's hub configuration makes curl its HTTP client


def test_in_the_venv_the_extra_config_configures_the_workshops_hub(
    example: RenderedExample, chart: Chart, tmp_path: Path
) -> None:
    pod = hub_pod(
        example.values, chart, tmp_path / "chart", existing_secret=existing_secret(example.settings)
    )
    report = run_on_host(pod, tmp_path / "srv-jupyterhub")
    assert_the_workshops_hub(report, example.settings, example.values, chart)


def test_the_charts_own_hub_configuration_runs_our_extra_config(
    example: RenderedExample, chart: Chart, tmp_path: Path
) -> None:
    """The released chart's jupyterhub_config.py and z2jh.py, reading the folder laid out as the
    chart mounts its ConfigMap and Secrets (its mount point moved here), run in this venv."""
    files = chart_own_files(chart)
    if files is None:
        pytest.skip(
            f"no released Z2JH chart {chart.version} here: dlworkshop/kubernetes/chart/{chart.version}/"
            f"jupyterhub is missing (scripts/refresh-z2jh-chart writes it); or set {CHART_ENV} (see test_helm.py)"
        )
    pod = hub_pod(
        example.values,
        chart,
        tmp_path / "chart",
        files,
        existing_secret=existing_secret(example.settings),
        relocate=True,
    )
    report = run_on_host(pod, tmp_path / "srv-jupyterhub")
    assert_the_workshops_hub(report, example.settings, example.values, chart)
    assert report["http_client"] == "CurlAsyncHTTPClient"  # the chart's own choice ran


def test_a_scheduled_prewarm_runs_inside_the_hub_with_the_charts_token(chart: Chart, tmp_path: Path) -> None:
    settings = parse_settings(
        "auth: {mode: shared-code, access_code: x}\nlearners: {count: 6}\n"
        "workshop: {start: 2030-01-06T09:00:00}\nhub: {backend: kubernetes}\n"
    )
    values = render_z2jh(settings).values
    report = run_on_host(hub_pod(values, chart, tmp_path / "chart"), tmp_path / "srv-jupyterhub")
    prewarm = next(s for s in report["jupyterhub"]["services"] if s["name"] == contract.PREWARM_SERVICE)
    assert prewarm["api_token"] == PREWARM_TOKEN
    assert prewarm["command"][1:] == ["-m", "hub.prewarm", "--scheduled"]
    assert prewarm["environment"]["JUPYTERHUB_API_URL"] == contract.HUB_API_URL_LOCAL
    assert (
        Path(prewarm["environment"][contract.CONFIG_ENV]).read_text()
        == (values["hub"]["extraFiles"]["workshop-yaml"]["stringData"])
    )


def test_values_without_the_prewarm_service_stop_the_hub_with_the_fix(
    rendered_examples: dict[str, RenderedExample], chart: Chart, tmp_path: Path
) -> None:
    values = rendered_examples["cpu.yaml"].values
    values = {**values, "hub": {**values["hub"], "services": {}}}
    result = inspect_on_host(hub_pod(values, chart, tmp_path / "chart"), tmp_path / "srv-jupyterhub")
    assert result.returncode != 0
    assert "the chart gave the hub no API token for its 'prewarm' service" in result.stderr
    assert (
        "install the values `dlworkshop render z2jh` writes (they declare hub.services.prewarm)"
        in result.stderr
    )


@pytest.mark.docker
def test_in_the_hub_image_the_extra_config_configures_the_workshops_hub(
    example: RenderedExample, chart: Chart, hub_image: str, tmp_path: Path
) -> None:
    pod = hub_pod(
        example.values,
        chart,
        tmp_path / "chart",
        chart_own_files(chart),
        existing_secret=existing_secret(example.settings),
    )
    report = run_in_image(pod, hub_image, CONTAINER_PREFIX)
    assert_the_workshops_hub(report, example.settings, example.values, chart)
    # The image's own: the hub package outside the chart's volume, and the chart's curl client.
    assert report["hub_package"] == str(contract.HUB_CODE / "hub")
    assert report["http_client"] == "CurlAsyncHTTPClient"
