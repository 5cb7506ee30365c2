"""Checks (b) and (c): the pods KubeSpawner itself would create from the values, and Kubernetes'
OpenAPI schema on them. Offline: KubeSpawner reads a kubeconfig that names no reachable cluster,
and nothing here calls the API.

`chart_spawner_config` does what the chart's jupyterhub_config.py does with the values before the
hub starts (the Spawner part: chart/<version>/values.yaml keys -> KubeSpawner options), so the pod
is the one the chart's hub would ask for.
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from dlworkshop.kubernetes.chart import Chart, json_path, merge_values

RELEASE = "dlworkshop"
NAMESPACE = "workshop"
LEARNER = "learner-01"

# singleuser.<key> -> KubeSpawner.<option>, set when the value is not null (the chart's own table).
SINGLEUSER_OPTIONS = {
    "pod_name_template": "podNameTemplate",
    "start_timeout": "startTimeout",
    "image_pull_policy": "image.pullPolicy",
    "events_enabled": "events",
    "extra_labels": "extraLabels",
    "extra_annotations": "extraAnnotations",
    "uid": "uid",
    "fs_gid": "fsGid",
    "service_account": "serviceAccountName",
    "storage_extra_labels": "storage.extraLabels",
    "node_selector": "nodeSelector",
    "node_affinity_required": "extraNodeAffinity.required",
    "node_affinity_preferred": "extraNodeAffinity.preferred",
    "pod_affinity_required": "extraPodAffinity.required",
    "pod_affinity_preferred": "extraPodAffinity.preferred",
    "pod_anti_affinity_required": "extraPodAntiAffinity.required",
    "pod_anti_affinity_preferred": "extraPodAntiAffinity.preferred",
    "lifecycle_hooks": "lifecycleHooks",
    "init_containers": "initContainers",
    "extra_containers": "extraContainers",
    "mem_limit": "memory.limit",
    "mem_guarantee": "memory.guarantee",
    "cpu_limit": "cpu.limit",
    "cpu_guarantee": "cpu.guarantee",
    "extra_resource_limits": "extraResource.limits",
    "extra_resource_guarantees": "extraResource.guarantees",
    "environment": "extraEnv",
    "profile_list": "profileList",
    "extra_pod_config": "extraPodConfig",
}
NODE_PURPOSE = {
    "matchExpressions": [{"key": "hub.jupyter.org/node-purpose", "operator": "In", "values": ["user"]}]
}

OFFLINE_KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{name: offline, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: offline, user: {token: never-used}}]
contexts: [{name: offline, context: {cluster: offline, user: offline, namespace: %s}}]
current-context: offline
"""


def lookup(values: dict[str, Any], dotted: str, default: Any = None) -> Any:
    node: Any = values
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def chart_spawner_config(merged: dict[str, Any], release: str = RELEASE, namespace: str = NAMESPACE) -> Any:
    """The Spawner/KubeSpawner configuration the chart's hub builds from merged values."""
    from traitlets.config import Config

    config = Config()
    spawner = config.KubeSpawner
    chart_name = merged.get("nameOverride") or "jupyterhub"
    spawner.common_labels = {
        "app.kubernetes.io/name": chart_name,
        "app": chart_name,
        "app.kubernetes.io/instance": release,
        "release": release,
        "app.kubernetes.io/managed-by": "kubespawner",
    }
    spawner.namespace = namespace
    if lookup(merged, "hub.consecutiveFailureLimit") is not None:
        config.Spawner.consecutive_failure_limit = lookup(merged, "hub.consecutiveFailureLimit")
    for option, key in SINGLEUSER_OPTIONS.items():
        value = lookup(merged, f"singleuser.{key}")
        if value is not None:
            spawner[option] = value
    image = lookup(merged, "singleuser.image.name")
    if image:
        tag = lookup(merged, "singleuser.image.tag")
        spawner.image = f"{image}:{tag}" if tag else image
    spawner.allow_privilege_escalation = lookup(merged, "singleuser.allowPrivilegeEscalation")
    # Registry credentials: the chart's own Secret when it makes and injects one, then the
    # chart-wide list, then the learner image's own.
    pull_secrets = []
    if lookup(merged, "imagePullSecret.create") and lookup(
        merged, "imagePullSecret.automaticReferenceInjection"
    ):
        pull_secrets.append("image-pull-secret")
    pull_secrets += [
        *(lookup(merged, "imagePullSecrets") or []),
        *(lookup(merged, "singleuser.image.pullSecrets") or []),
    ]
    if pull_secrets:
        spawner.image_pull_secrets = pull_secrets
    if lookup(merged, "scheduling.userScheduler.enabled"):
        spawner.scheduler_name = f"{release}-user-scheduler"
    if lookup(merged, "scheduling.podPriority.enabled"):
        spawner.priority_class_name = f"{release}-default-priority"
    purpose = lookup(merged, "scheduling.userPods.nodeAffinity.matchNodePurpose")
    if purpose == "prefer":
        preferred = list(spawner.node_affinity_preferred) if "node_affinity_preferred" in spawner else []
        spawner.node_affinity_preferred = [*preferred, {"weight": 100, "preference": NODE_PURPOSE}]
    elif purpose == "require":
        required = list(spawner.node_affinity_required) if "node_affinity_required" in spawner else []
        spawner.node_affinity_required = [*required, NODE_PURPOSE]
    tolerations = [
        *(lookup(merged, "scheduling.userPods.tolerations") or []),
        *(lookup(merged, "singleuser.extraTolerations") or []),
    ]
    if tolerations:
        spawner.tolerations = tolerations
    volumes, mounts = _storage(spawner, merged)
    spawner.volumes = volumes
    spawner.volume_mounts = mounts
    if "cmd" in (merged.get("singleuser") or {}):
        config.Spawner.cmd = lookup(merged, "singleuser.cmd")
    if lookup(merged, "singleuser.defaultUrl") is not None:
        config.Spawner.default_url = lookup(merged, "singleuser.defaultUrl")
    metadata = lookup(merged, "singleuser.cloudMetadata") or {}
    if metadata.get("blockWithIptables") is True:
        init = list(spawner.init_containers) if "init_containers" in spawner else []
        spawner.init_containers = [*init, _metadata_blocker(merged, metadata["ip"])]
    for section, options in (lookup(merged, "hub.config") or {}).items():
        if section in ("Spawner", "KubeSpawner"):
            config[section].update(options)
    return config


def _storage(spawner: Any, merged: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    storage = lookup(merged, "singleuser.storage") or {}
    volumes: dict[str, Any] = {}
    mounts: dict[str, Any] = {}
    if storage.get("type") == "dynamic":
        dynamic = storage.get("dynamic") or {}
        if dynamic.get("pvcNameTemplate"):
            spawner.pvc_name_template = dynamic["pvcNameTemplate"]
        name = str(dynamic.get("volumeNameTemplate", "volume-{username}"))
        spawner.storage_pvc_ensure = True
        for option, value in (
            ("storage_class", dynamic.get("storageClass")),
            ("storage_access_modes", dynamic.get("storageAccessModes")),
            ("storage_capacity", storage.get("capacity")),
        ):
            if value is not None:
                spawner[option] = value
        volumes[name] = {"name": name, "persistentVolumeClaim": {"claimName": "{pvc_name}"}}
        mounts[name] = {
            "mountPath": storage.get("homeMountPath"),
            "name": name,
            "subPath": dynamic.get("subPath"),
        }
    elif storage.get("type") == "static":
        static = storage.get("static") or {}
        volumes["home"] = {"name": "home", "persistentVolumeClaim": {"claimName": static.get("pvcName")}}
        mounts["home"] = {
            "mountPath": storage.get("homeMountPath"),
            "name": "home",
            "subPath": static.get("subPath"),
        }
    extra_files = lookup(merged, "singleuser.extraFiles") or {}
    if extra_files:
        items = [
            {"key": key, "path": key, **({"mode": file["mode"]} if "mode" in file else {})}
            for key, file in extra_files.items()
        ]
        volumes["files"] = {"name": "files", "secret": {"secretName": "singleuser", "items": items}}
        for index, (key, file) in enumerate(extra_files.items()):
            mounts[f"{index}-files"] = {"mountPath": file["mountPath"], "subPath": key, "name": "files"}
    extra_volumes = storage.get("extraVolumes") or {}
    volumes.update(
        extra_volumes if isinstance(extra_volumes, dict) else {v["name"]: v for v in extra_volumes}
    )
    extra_mounts = storage.get("extraVolumeMounts") or {}
    mounts.update(
        extra_mounts
        if isinstance(extra_mounts, dict)
        else {f"{index}-{mount['name']}": mount for index, mount in enumerate(extra_mounts)}
    )
    return volumes, mounts


def _metadata_blocker(merged: dict[str, Any], ip: str) -> dict[str, Any]:
    image = lookup(merged, "singleuser.networkTools.image") or {}
    return {
        "name": "block-cloud-metadata",
        "image": f"{image.get('name')}:{image.get('tag')}",
        "command": [
            "iptables",
            "--append",
            "OUTPUT",
            "--protocol",
            "tcp",
            "--destination",
            ip,
            "--destination-port",
            "80",
            "--jump",
            "DROP",
        ],
        "securityContext": {"privileged": True, "runAsUser": 0, "capabilities": {"add": ["NET_ADMIN"]}},
        "resources": lookup(merged, "singleuser.networkTools.resources") or {},
    }


@dataclass(frozen=True)
class LearnerPod:
    """What KubeSpawner would create for one learner choosing one profile."""

    profile: str
    pod: dict[str, Any]
    pvc: dict[str, Any] | None


@contextmanager
def offline_kubeconfig(namespace: str = NAMESPACE) -> Iterator[None]:
    """KubeSpawner loads a kubeconfig when it is built; this one names no reachable cluster (and
    an admin's own ~/.kube/config is never read). kubernetes_asyncio reads $KUBECONFIG once, when
    imported, so its default location is pointed here as well."""
    from kubernetes_asyncio.config import kube_config

    previous = os.environ.get("KUBECONFIG"), kube_config.KUBE_CONFIG_DEFAULT_LOCATION
    with tempfile.TemporaryDirectory(prefix="dlworkshop-kubeconfig-") as folder:
        path = Path(folder) / "config"
        path.write_text(OFFLINE_KUBECONFIG % namespace, encoding="utf-8")
        os.environ["KUBECONFIG"] = kube_config.KUBE_CONFIG_DEFAULT_LOCATION = str(path)
        try:
            yield
        finally:
            kube_config.KUBE_CONFIG_DEFAULT_LOCATION = previous[1]
            if previous[0] is None:
                os.environ.pop("KUBECONFIG", None)
            else:
                os.environ["KUBECONFIG"] = previous[0]


async def _render(config: Any, slugs: list[str], username: str) -> list[LearnerPod]:
    from kubernetes_asyncio.client import ApiClient
    from kubespawner import KubeSpawner

    user = SimpleNamespace(name=username, id=1, url=f"/user/{username}/", escaped_name=username)
    hub = SimpleNamespace(
        public_host="", url="http://hub:8081/hub/", base_url="/", api_url="http://hub:8081/hub/api"
    )
    pods = []
    async with ApiClient() as api:
        for slug in slugs:
            spawner = KubeSpawner(config=config, user=user, hub=hub)
            spawner.user_options = {"profile": slug} if slug else {}
            await spawner.load_user_options()
            pod = api.sanitize_for_serialization(await spawner.get_pod_manifest())
            pvc = (
                api.sanitize_for_serialization(spawner.get_pvc_manifest())
                if spawner.storage_pvc_ensure
                else None
            )
            pods.append(LearnerPod(profile=slug, pod=pod, pvc=pvc))
    return pods


def learner_pods(values: dict[str, Any], chart: Chart, username: str = LEARNER) -> list[LearnerPod]:
    """Check (b): each profile's pod (and work PVC), rendered by KubeSpawner itself."""
    merged = merge_values(chart.defaults, values)
    config = chart_spawner_config(merged)
    slugs = [profile["slug"] for profile in lookup(merged, "singleuser.profileList") or []] or [""]
    with offline_kubeconfig():
        return asyncio.run(_render(config, slugs, username))


def kubernetes_versions(chart: Chart) -> list[str]:
    """The oldest Kubernetes the chart supports and the newest whose schema kubernetes-validate has."""
    from kubernetes_validate import latest_version

    major, minor = chart.oldest_kubernetes
    newest = re.match(r"\d+\.\d+", latest_version())
    return sorted({f"{major}.{minor}", newest.group(0) if newest else latest_version()})


@cache
def _kubernetes_validate() -> Any:
    """kubernetes-validate, reading each schema file once: it parses its definitions (megabytes of
    JSON) again for every object, ten times the cost of validating, and Helm renders ~35 objects."""
    import kubernetes_validate
    import kubernetes_validate.utils

    kubernetes_validate.utils.schema_contents = cache(kubernetes_validate.utils.schema_contents)
    return kubernetes_validate


def openapi_problems(manifest: dict[str, Any], version: str) -> list[str]:
    """Check (c): the manifest against Kubernetes' OpenAPI schema (strict: unknown fields fail)."""
    kubernetes_validate = _kubernetes_validate()
    try:
        kubernetes_validate.validate(manifest, version, strict=True)
    except kubernetes_validate.ValidationError as error:
        name = manifest.get("metadata", {}).get("name")
        return [
            f"{manifest.get('kind')} {name}: {json_path(error.absolute_path)}: {error.message} (Kubernetes {version})"
        ]
    return []
