"""The Kubernetes backend without a cluster: the learner pods it reads (a fake API answering as
Kubernetes does, with pods KubeSpawner itself renders), the pre-warm token it takes from the chart,
the options it leaves to the chart, and its bounded stop. Its configure test is in
test_backend_interface.py with the other engines'; tests/kubernetes/test_hub_under_the_chart.py runs
it under the chart's configuration."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from traitlets.config import Config

from dlworkshop import contract
from dlworkshop.errors import ConfigError
from dlworkshop.kubernetes.chart import load_chart
from dlworkshop.kubernetes.manifests import learner_pods, offline_kubeconfig
from dlworkshop.kubernetes.values import render_z2jh
from dlworkshop.settings import parse_settings
from hub.backends import backend_for
from hub.backends.kubernetes import (
    KubernetesBackend,
    WorkshopKubeSpawner,
    list_learner_servers,
    pod_selector,
)

pytestmark = pytest.mark.kubernetes

SETTINGS = "auth: {mode: shared-code, access_code: x}\nhub: {backend: kubernetes}\n"
GPU_SETTINGS = (
    SETTINGS + "image: {variant: cuda}\nresources: {gpu: {policy: whole, per_learner: 1}}\n"
    "kubernetes: {gpu_tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]}\n"
)


class Response:
    """kubernetes_asyncio's answer with _preload_content=False: the body as Kubernetes sends it."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body

    async def read(self) -> bytes:
        return json.dumps(self.body).encode()


class FakeCoreV1Api:
    def __init__(self, pods: list[dict[str, Any]]) -> None:
        self.pods = pods
        self.asked: list[tuple[str, str]] = []

    async def list_namespaced_pod(self, namespace: str, **kwargs: Any) -> Response:
        assert kwargs["_preload_content"] is False
        self.asked.append((namespace, kwargs["label_selector"]))
        return Response({"kind": "PodList", "items": self.pods})


def rendered_pod(name: str, status: dict[str, Any], deleting: bool = False) -> dict[str, Any]:
    """A learner's pod as KubeSpawner renders it for the chart (offline), with a status."""
    values = render_z2jh(parse_settings(SETTINGS)).values
    (pod,) = learner_pods(values, load_chart("4.4.0"), username=name)
    pod = {**pod.pod, "status": status}
    if deleting:
        pod["metadata"] = {**pod["metadata"], "deletionTimestamp": "2030-01-06T09:00:00Z"}
    return pod


def ready() -> dict[str, Any]:
    return {
        "phase": "Running",
        "podIP": "10.0.0.7",
        "containerStatuses": [{"name": "notebook", "ready": True}],
    }


def test_learner_servers_are_this_hubs_pods_as_kubernetes_reports_them() -> None:
    pods = [
        rendered_pod("ada", ready()),
        rendered_pod("bo", {"phase": "Pending"}),
        rendered_pod("cy", {"phase": "Running", "containerStatuses": [{"name": "notebook", "ready": False}]}),
        rendered_pod("dee", ready(), deleting=True),
        rendered_pod("eve", {"phase": "Failed"}),
    ]
    pods[0]["spec"]["nodeName"] = "gpu-node-1"
    api = FakeCoreV1Api(pods)
    servers = asyncio.run(list_learner_servers(api, "workshop", pod_selector("dlworkshop")))
    assert api.asked == [("workshop", "component=singleuser-server,app.kubernetes.io/instance=dlworkshop")]
    assert [(s.user, s.state) for s in servers] == [
        ("ada", "running"),
        ("bo", "starting"),
        ("cy", "starting"),
        ("dee", "stopped"),
        ("eve", "stopped"),
    ]
    assert servers[0].engine_id == "jupyter-ada" and servers[0].node == "gpu-node-1"
    # The selector matches the labels KubeSpawner puts on a learner's pod under the chart.
    labels = servers[0].labels
    for term in pod_selector("dlworkshop").split(","):
        key, _, value = term.partition("=")
        assert labels[key] == value


def test_learner_servers_asks_the_hubs_namespace_with_kubespawners_config(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import kubernetes_asyncio.client
    import kubespawner.clients

    api = FakeCoreV1Api([rendered_pod("ada", ready())])
    monkeypatch.setattr(kubespawner.clients, "load_config", lambda: None)  # in the hub pod: in-cluster
    monkeypatch.setattr(kubernetes_asyncio.client, "CoreV1Api", lambda client: api)
    monkeypatch.setenv("POD_NAMESPACE", "workshop")
    monkeypatch.setenv("HELM_RELEASE_NAME", "spring")
    backend = backend_for(parse_settings(SETTINGS))
    assert isinstance(backend, KubernetesBackend)

    async def from_the_hubs_loop() -> list[Any]:  # as the hub would call it, inside its event loop
        return backend.learner_servers()

    servers = asyncio.run(from_the_hubs_loop())
    assert [(s.user, s.state) for s in servers] == [("ada", "running")]
    assert api.asked == [("workshop", "component=singleuser-server,app.kubernetes.io/instance=spring")]


def test_the_prewarm_token_is_the_one_the_chart_made() -> None:
    backend = KubernetesBackend(parse_settings(SETTINGS))
    c = Config()
    c.JupyterHub.services = [{"name": "prewarm", "api_token": "from-the-chart"}]
    state = backend.hub_state(c)
    assert state.prewarm_token == "from-the-chart" and state.proxy_token is None
    assert str(state.seats_file) == str(contract.HUB_DATA / contract.SEATS_FILE)
    with pytest.raises(ConfigError, match="no API token for its 'prewarm' service") as refused:
        backend.hub_state(Config())
    assert refused.value.fix is not None and "hub.services.prewarm" in refused.value.fix


def test_what_the_chart_owns_is_left_to_it() -> None:
    """Database, secrets, the proxy and the hub's addresses: set by the chart before hub.configure."""
    from hub import config as hub_config

    c = Config()
    c.JupyterHub.services = [{"name": "prewarm", "api_token": "from-the-chart"}]
    hub_config.configure(c, parse_settings(SETTINGS))
    assert not {"db_url", "cookie_secret_file", "bind_url", "hub_ip", "hub_connect_ip"} & set(c.JupyterHub)
    assert "ConfigurableHTTPProxy" not in c
    assert c.JupyterHub.spawner_class is WorkshopKubeSpawner


def test_the_charts_user_pod_tolerations_stay_first() -> None:
    chart_set = [
        {"key": "hub.jupyter.org/dedicated", "operator": "Equal", "value": "user", "effect": "NoSchedule"}
    ]
    gpu = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    c = Config()
    c.KubeSpawner.tolerations = [*chart_set, gpu]  # the chart's, from the values
    KubernetesBackend(parse_settings(GPU_SETTINGS)).configure(c)
    assert c.KubeSpawner.tolerations == [*chart_set, gpu]
    alone = Config()
    KubernetesBackend(parse_settings(GPU_SETTINGS)).configure(alone)
    assert alone.KubeSpawner.tolerations == [gpu]


@pytest.fixture
def kube_spawner() -> Iterator[Any]:
    """A learner's spawner as JupyterHub makes one, offline (KubeSpawner needs a running loop and
    a kubeconfig to be built)."""
    from types import SimpleNamespace

    c = Config()
    settings = "auth: {mode: shared-code, access_code: x}\nhub: {backend: kubernetes, start_timeout: 30}\n"
    KubernetesBackend(parse_settings(settings)).configure(c)
    user = SimpleNamespace(name="ada", id=1, url="/user/ada/", escaped_name="ada")
    with offline_kubeconfig():
        yield lambda: WorkshopKubeSpawner(config=c, user=user)


def test_a_stop_is_bounded_by_the_admitted_start_not_the_queue(
    kube_spawner: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kubespawner import KubeSpawner

    watched: list[bool] = []

    async def never_gone(self: Any, now: bool = False) -> None:
        await asyncio.sleep(3600)

    async def rewatch(self: Any, replace: bool = False) -> None:
        watched.append(replace)

    monkeypatch.setattr(KubeSpawner, "stop", never_gone)
    monkeypatch.setattr(KubeSpawner, "_start_watching_pods", rewatch)

    async def scenario() -> None:
        spawner = kube_spawner()
        assert spawner.start_timeout == contract.QUEUED_START_TIMEOUT
        spawner.admitted_start_timeout = 1
        with pytest.raises(TimeoutError, match="did not go within 1 s"):
            await spawner.stop()

    asyncio.run(scenario())
    assert watched == [True]


def test_the_spawn_page_shows_the_pods_newest_event(
    kube_spawner: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario() -> None:
        spawner = kube_spawner()
        assert spawner.engine_message() is None  # no event reflector before the start
        events = [{"message": "Successfully assigned workshop/jupyter-ada"}, {"message": "Pulling image"}]
        monkeypatch.setattr(WorkshopKubeSpawner, "events", property(lambda self: events))
        assert spawner.engine_message() == "Kubernetes: Pulling image"

    asyncio.run(scenario())
