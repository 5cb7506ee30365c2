"""Checks (b) and (c): each example's profile rendered into a pod by KubeSpawner itself (the
version the pinned chart's hub runs, offline), then Kubernetes' OpenAPI schema on the pod and its
work PVC, for the oldest Kubernetes the chart supports and the newest kubernetes-validate knows."""

from __future__ import annotations

import importlib.metadata

import pytest

from dlworkshop.kubernetes.chart import Chart
from dlworkshop.kubernetes.manifests import kubernetes_versions, openapi_problems
from tests.kubernetes.conftest import RenderedExample

pytestmark = pytest.mark.kubernetes

LEARNER_IMAGE = "registry.example.org/dlworkshop/learner"
GPU_TAINT = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
# Written out by hand from the example files: the pod each must produce.
EXPECTED = {
    "cpu.yaml": {
        "image": f"{LEARNER_IMAGE}:2026.1",
        "cpu": 1,
        "memory": 3 * 1024**3,
        "gpu": {},
        "node_selector": None,
        "gpu_memory_mb": None,
        "storage": "5Gi",
    },
    "gpu-whole.yaml": {
        "image": f"{LEARNER_IMAGE}:2026.1-cuda",
        "cpu": 2,
        "memory": 16 * 1024**3,
        "gpu": {"nvidia.com/gpu": "1"},
        "node_selector": {"cloud.google.com/gke-accelerator": "nvidia-l4"},
        "gpu_memory_mb": None,
        "storage": "10Gi",
    },
    "gpu-shared.yaml": {
        "image": f"{LEARNER_IMAGE}:2026.1-cuda",
        "cpu": 2,
        "memory": 16 * 1024**3,
        "gpu": {"nvidia.com/gpu": "1"},
        "node_selector": {"nvidia.com/gpu.product": "NVIDIA-L4-SHARED"},
        "gpu_memory_mb": str(23034 // 6),
        "storage": "10Gi",
    },
    "mig.yaml": {
        "image": f"{LEARNER_IMAGE}:2026.1-cuda",
        "cpu": 4,
        "memory": 24 * 1024**3,
        "gpu": {"nvidia.com/mig-1g.10gb": "1"},
        "node_selector": {"nvidia.com/mig.config": "all-1g.10gb"},
        "gpu_memory_mb": None,
        "storage": "10Gi",
    },
}


def notebook(pod: dict) -> dict:
    (container,) = [c for c in pod["spec"]["containers"] if c["name"] == "notebook"]
    return container


def test_kubespawner_is_the_version_the_chart_pins(chart: Chart) -> None:
    assert importlib.metadata.version("jupyterhub-kubespawner") == chart.kubespawner_version


def test_one_profile_per_workshop_rendered_by_kubespawner(example: RenderedExample) -> None:
    (pod,) = example.pods
    assert pod.profile == example.values["singleuser"]["profileList"][0]["slug"]
    assert pod.pod["kind"] == "Pod" and pod.pvc is not None and pod.pvc["kind"] == "PersistentVolumeClaim"


def test_the_gpu_limit_and_the_cpu_and_memory_quota(example: RenderedExample) -> None:
    expected = EXPECTED[example.path.name]
    resources = notebook(example.pods[0].pod)["resources"]
    for kind in ("limits", "requests"):
        assert float(resources[kind]["cpu"]) == expected["cpu"]
        assert int(resources[kind]["memory"]) == expected["memory"]
        extended = {name: amount for name, amount in resources[kind].items() if "/" in name}
        assert extended == expected["gpu"]


def test_the_gpu_pool_node_selector_and_tolerations(example: RenderedExample) -> None:
    expected = EXPECTED[example.path.name]
    spec = example.pods[0].pod["spec"]
    assert spec.get("nodeSelector") == expected["node_selector"]
    assert (GPU_TAINT in spec["tolerations"]) == bool(expected["gpu"])


def test_the_learner_image_and_the_gpu_memory_cap(example: RenderedExample) -> None:
    expected = EXPECTED[example.path.name]
    container = notebook(example.pods[0].pod)
    assert container["image"] == expected["image"]
    assert container["imagePullPolicy"] == "IfNotPresent"
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env.get("DLWORKSHOP_GPU_MEMORY_MB") == expected["gpu_memory_mb"]


def test_the_learner_runs_as_uid_1000_without_privilege(example: RenderedExample) -> None:
    pod = example.pods[0].pod
    context = notebook(pod)["securityContext"]
    assert context["runAsUser"] == 1000
    assert context["runAsNonRoot"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert "privileged" not in context
    # The one privileged container is the chart's init container that blocks the metadata server.
    privileged = [
        c["name"] for c in pod["spec"].get("initContainers", []) if c["securityContext"].get("privileged")
    ]
    assert privileged == ["block-cloud-metadata"]


def test_the_work_folder_is_the_learners_own_pvc(example: RenderedExample) -> None:
    pod, pvc = example.pods[0].pod, example.pods[0].pvc
    (mount,) = notebook(pod)["volumeMounts"]
    assert mount["mountPath"] == "/home/jovyan/work"
    (volume,) = [v for v in pod["spec"]["volumes"] if v["name"] == mount["name"]]
    assert volume["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"] == "claim-learner-01"
    assert pvc["spec"]["resources"]["requests"]["storage"] == EXPECTED[example.path.name]["storage"]
    assert pod["spec"]["securityContext"]["fsGroup"] == 100


def test_pod_and_pvc_pass_the_kubernetes_openapi_schema(example: RenderedExample, chart: Chart) -> None:
    versions = kubernetes_versions(chart)
    assert versions[0] == "1.28"
    for version in versions:
        assert openapi_problems(example.pods[0].pod, version) == []
        assert openapi_problems(example.pods[0].pvc, version) == []


def restricted_pod_security_problems(pod: dict) -> list[str]:
    """What the restricted Pod Security Standard refuses in a pod, for the fields these pods set
    (privileged, privilege escalation, capabilities, running as root, seccomp)."""
    problems = []
    pod_context = pod["spec"].get("securityContext", {})
    for container in [*pod["spec"].get("initContainers", []), *pod["spec"]["containers"]]:
        context, name = container.get("securityContext", {}), container["name"]
        if context.get("privileged"):
            problems.append(f"{name}: privileged")
        if context.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: allowPrivilegeEscalation is not false")
        if context.get("capabilities", {}).get("drop") != ["ALL"] or context["capabilities"].get("add"):
            problems.append(f"{name}: capabilities are not exactly drop ALL")
        if not context.get("runAsNonRoot", pod_context.get("runAsNonRoot")) or context.get("runAsUser") == 0:
            problems.append(f"{name}: may run as root")
        seccomp = context.get("seccompProfile", pod_context.get("seccompProfile", {}))
        if seccomp.get("type") not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{name}: no RuntimeDefault seccomp profile")
    return problems


def test_without_the_iptables_container_the_pod_passes_restricted_pod_security(chart: Chart) -> None:
    """kubernetes.metadata_iptables: false leaves the metadata server to the NetworkPolicy alone."""
    from dlworkshop.kubernetes.manifests import learner_pods
    from dlworkshop.kubernetes.values import render_z2jh
    from dlworkshop.settings import parse_settings

    base = "auth: {mode: shared-code, access_code: x}\nhub: {backend: kubernetes}\n"
    with_iptables = learner_pods(render_z2jh(parse_settings(base)).values, chart)[0].pod
    assert restricted_pod_security_problems(with_iptables) == [
        "block-cloud-metadata: privileged",
        "block-cloud-metadata: allowPrivilegeEscalation is not false",
        "block-cloud-metadata: capabilities are not exactly drop ALL",
        "block-cloud-metadata: may run as root",
        "block-cloud-metadata: no RuntimeDefault seccomp profile",
    ]
    values = render_z2jh(parse_settings(base + "kubernetes: {metadata_iptables: false}\n")).values
    assert values["singleuser"]["networkPolicy"]["egressAllowRules"]["cloudMetadataServer"] is False
    without = learner_pods(values, chart)[0].pod
    assert "initContainers" not in without["spec"]
    assert restricted_pod_security_problems(without) == []
