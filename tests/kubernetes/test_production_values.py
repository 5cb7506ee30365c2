"""What an operator needs before production, from workshop.yaml's kubernetes section: TLS whenever a
domain is served (Let's Encrypt, the site's TLS Secret, or an Ingress), the private registry's pull
secrets, the hub's secrets kept in a Secret of their own, storage classes, the hub's and the proxy's
requests, and MIG's strategy."""

from __future__ import annotations

from typing import Any

import pytest

from dlworkshop.kubernetes.chart import Chart, schema_problems
from dlworkshop.kubernetes.checks import values_problems
from dlworkshop.kubernetes.mapping import gpu_limits, gpu_node_selector
from dlworkshop.kubernetes.values import existing_secret_manifest, read_hub_files, render_z2jh
from dlworkshop.settings import Settings, parse_settings
from tests.kubernetes.conftest import RenderedExample

pytestmark = pytest.mark.kubernetes

BASE = "auth: {mode: shared-code, access_code: sesame-1234}\nhub:\n  backend: kubernetes\n"
MIG = "image: {variant: cuda}\nresources: {gpu: {policy: mig}}\n"


def values_of(text: str, chart: Chart) -> dict[str, Any]:
    values = render_z2jh(parse_settings(text)).values
    assert schema_problems(values, chart) == [] and values_problems(values) == []
    return values


def test_every_example_serves_https(example: RenderedExample) -> None:
    values = example.values
    https = values["proxy"]["https"]
    ingress = values.get("ingress", {})
    assert https["enabled"] or (ingress["enabled"] and ingress["tls"])
    assert example.settings.hub.tls.domain in (https.get("hosts") or ingress["hosts"])


def test_a_given_tls_secret_is_served_by_the_proxy(chart: Chart) -> None:
    values = values_of(BASE + "  tls: {domain: w.example.org}\nkubernetes: {tls_secret: w-tls}\n", chart)
    assert values["proxy"]["https"] == {
        "enabled": True,
        "hosts": ["w.example.org"],
        "type": "secret",
        "secret": {"name": "w-tls", "crt": "tls.crt", "key": "tls.key"},
    }
    assert "ingress" not in values


def test_an_ingress_terminates_tls_and_the_proxy_is_reached_through_it_only(chart: Chart) -> None:
    values = values_of(
        BASE
        + "  tls: {domain: w.example.org}\n"
        + "kubernetes:\n  ingress:\n    class_name: nginx\n    tls_secret: w-tls\n"
        + "    annotations: {cert-manager.io/cluster-issuer: letsencrypt}\n",
        chart,
    )
    assert values["ingress"] == {
        "enabled": True,
        "ingressClassName": "nginx",
        "hosts": ["w.example.org"],
        "tls": [{"hosts": ["w.example.org"], "secretName": "w-tls"}],
        "annotations": {"cert-manager.io/cluster-issuer": "letsencrypt"},
    }
    assert values["proxy"]["https"] == {"enabled": False}
    assert values["proxy"]["service"] == {"type": "ClusterIP"}


def test_pull_secrets_storage_classes_and_requests(chart: Chart) -> None:
    values = values_of(
        BASE
        + "kubernetes:\n  image_pull_secrets: [registry-creds]\n  storage_class: fast\n"
        + "  hub_storage_class: fast-retain\n  hub_requests: {cpu: 500m, memory: 1Gi}\n"
        + "  proxy_requests: {cpu: 250m, memory: 256Mi}\n",
        chart,
    )
    # Top level: every pod of the chart, and the learners' through KubeSpawner.
    assert values["imagePullSecrets"] == ["registry-creds"]
    assert values["singleuser"]["storage"]["dynamic"] == {"storageClass": "fast"}
    assert values["hub"]["db"] == {"pvc": {"storageClassName": "fast-retain"}}
    assert values["hub"]["resources"] == {"requests": {"cpu": "500m", "memory": "1Gi"}}
    proxy_requests = {"requests": {"cpu": "250m", "memory": "256Mi"}}
    assert values["proxy"]["chp"]["resources"] == values["proxy"]["traefik"]["resources"] == proxy_requests


def test_the_hub_and_proxy_ask_for_room_by_default(chart: Chart) -> None:
    values = values_of(BASE, chart)
    assert values["hub"]["resources"] == {"requests": {"cpu": "200m", "memory": "512Mi"}}
    assert values["proxy"]["chp"]["resources"] == {"requests": {"cpu": "200m", "memory": "512Mi"}}
    assert "imagePullSecrets" not in values and "db" not in values["hub"]


def test_with_an_existing_secret_the_values_hold_no_secret(chart: Chart) -> None:
    text = BASE + "kubernetes: {existing_secret: hub-secrets}\n"
    values = values_of(text, chart)
    assert "sesame-1234" not in repr(values)
    assert values["hub"]["existingSecret"] == "hub-secrets" and "extraFiles" not in values["hub"]
    settings = parse_settings(text)
    secret = existing_secret_manifest(settings, read_hub_files(settings))
    assert secret["metadata"] == {"name": "hub-secrets"} and secret["kind"] == "Secret"
    assert (
        parse_settings(secret["stringData"]["workshop.yaml"]).auth.access_code.get_secret_value()
        == "sesame-1234"
    )


@pytest.mark.parametrize(
    ("kubernetes", "resource", "selector"),
    [
        pytest.param("{mig_profile: 1g.10gb}", "nvidia.com/mig-1g.10gb", {}, id="mixed"),
        pytest.param(
            "{mig_profile: 1g.10gb, mig_strategy: single}",
            "nvidia.com/gpu",
            {"nvidia.com/mig.config": "all-1g.10gb"},
            id="single-gpu-operator",
        ),
        pytest.param(
            "{mig_profile: 1g.10gb, mig_strategy: single, "
            "gpu_node_selector: {cloud.google.com/gke-gpu-partition-size: 1g.10gb}}",
            "nvidia.com/gpu",
            {"cloud.google.com/gke-gpu-partition-size": "1g.10gb"},
            id="single-gke",
        ),
    ],
)
def test_the_mig_strategy_picks_the_resource_and_the_nodes(
    kubernetes: str, resource: str, selector: dict[str, str], chart: Chart
) -> None:
    text = BASE + MIG + f"kubernetes: {kubernetes}\n"
    settings: Settings = parse_settings(text)
    assert gpu_limits(settings) == {resource: 1}
    assert gpu_node_selector(settings) == selector
    values = values_of(text, chart)
    requests = values["scheduling"]["userPlaceholder"]["resources"]["requests"]
    assert requests[resource] == "1"
    assert values["singleuser"].get("nodeSelector", {}) == selector
