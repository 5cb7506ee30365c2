"""Learners' servers as pods on a Kubernetes cluster (KubeSpawner), under the Zero to JupyterHub chart.

The chart runs this project's hub image and configures the hub before `hub.configure` runs (its
jupyterhub_config.py, then `hub.extraConfig`): the database, the cookie secret, the proxy's token,
the hub's addresses and the services' API tokens are the chart's (`platform_runs_hub`). This
backend sets KubeSpawner's options from the same mapping the rendered values come from
(`dlworkshop.kubernetes.mapping.kubespawner_traits`), so the hub and the values cannot drift,
and mixes the admission queue into KubeSpawner. GPUs are Kubernetes' to hand out: a profile asks
for an extended resource and the NVIDIA device plugin allocates it; nothing here counts GPUs.

The only module of the hub that imports kubespawner or kubernetes_asyncio.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

from kubespawner import KubeSpawner

from dlworkshop import contract
from dlworkshop.errors import ConfigError
from dlworkshop.kubernetes.mapping import kubespawner_traits
from hub.backends.base import Backend, LearnerServer, ServerState
from hub.spawning import WorkshopSpawner
from hub.state import HubState

# KubeSpawner's default component label: every learner pod carries component=singleuser-server.
COMPONENT = "singleuser-server"
# Set on the hub pod by the chart (and read by its jupyterhub_config.py).
NAMESPACE_ENV = "POD_NAMESPACE"
RELEASE_ENV = "HELM_RELEASE_NAME"
USERNAME_ANNOTATION = "hub.jupyter.org/username"


class WorkshopKubeSpawner(WorkshopSpawner, KubeSpawner):
    """KubeSpawner behind the admission queue. Its start_timeout covers the queue (JupyterHub bounds
    a whole start with it); the start once admitted, which is where KubeSpawner waits for the pod,
    is bounded by admitted_start_timeout, and so is the wait for a stopped pod to go."""

    def engine_message(self) -> str | None:
        """The newest Kubernetes event of the learner's pod (scheduled, pulling, started...)."""
        events = self.events
        return f"Kubernetes: {events[-1]['message']}" if events else None

    async def stop(self, now: bool = False) -> None:
        try:
            await asyncio.wait_for(super().stop(now=now), self.admitted_start_timeout)
        except asyncio.TimeoutError:
            # What KubeSpawner does when its own wait runs out: the pod reflector may have lost
            # its watch, so start a fresh one before giving up.
            await self._start_watching_pods(replace=True)
            raise TimeoutError(
                f"pod {self.pod_name} did not go within {self.admitted_start_timeout} s"
            ) from None


class PodLister(Protocol):
    """The part of kubernetes_asyncio's CoreV1Api this backend calls."""

    def list_namespaced_pod(
        self, namespace: str, *, label_selector: str = ..., _preload_content: bool = ...
    ) -> Awaitable[Any]: ...


def _pod_state(pod: dict[str, Any]) -> ServerState:
    if pod["metadata"].get("deletionTimestamp"):
        return "stopped"
    status = pod.get("status") or {}
    phase = status.get("phase")
    if phase == "Pending":
        return "starting"
    if phase == "Running":
        statuses = status.get("containerStatuses") or []
        return "running" if statuses and all(s.get("ready") for s in statuses) else "starting"
    return "stopped"  # Succeeded, Failed, Unknown


def learner_server(pod: dict[str, Any]) -> LearnerServer:
    """A learner pod as the API returns it (JSON) -> what the hub's seam reads."""
    metadata = pod["metadata"]
    labels = metadata.get("labels") or {}
    annotations = metadata.get("annotations") or {}
    return LearnerServer(
        # The annotation holds the name as it is; the label only a Kubernetes-safe slug of it.
        user=annotations.get(USERNAME_ANNOTATION) or labels.get(USERNAME_ANNOTATION, ""),
        engine_id=metadata["name"],
        state=_pod_state(pod),
        node=(pod.get("spec") or {}).get("nodeName"),
        labels=labels,
    )


def pod_selector(release: str | None) -> str:
    """The learner pods of this hub: KubeSpawner's component label, and the chart's release label
    (KubeSpawner.common_labels), which tells two hubs in one namespace apart."""
    selector = f"component={COMPONENT}"
    return f"{selector},app.kubernetes.io/instance={release}" if release else selector


async def list_learner_servers(api: PodLister, namespace: str, selector: str) -> list[LearnerServer]:
    # Raw JSON, as KubeSpawner's own pod reflector reads it (no model objects to convert back).
    response = await api.list_namespaced_pod(namespace, label_selector=selector, _preload_content=False)
    pods = json.loads(await response.read())["items"]
    return [learner_server(pod) for pod in pods]


class KubernetesBackend(Backend):
    name = "kubernetes"
    platform_runs_hub = True
    # A learner's start spends its own guaranteed CPU on its own node, not the hub's, so the hub
    # pod's cores say nothing: Z2JH's own default hub.concurrentSpawnLimit.
    auto_start_capacity = 64

    @property
    def spawner_class(self) -> type[WorkshopSpawner]:
        return WorkshopKubeSpawner

    @property
    def namespace(self) -> str:
        """Where the hub runs its learners' pods: its own namespace (KubeSpawner's default too)."""
        return os.environ.get(NAMESPACE_ENV, "default")

    def hub_state(self, c: Any) -> HubState:
        """The chart has made the pre-warm service's token (values: hub.services.prewarm) and put
        it in JupyterHub's services before hub.extraConfig runs; seats live on the hub's volume."""
        declared = c.JupyterHub.services if "services" in c.JupyterHub else []
        token = next(
            (s.get("api_token") for s in declared if s.get("name") == contract.PREWARM_SERVICE), None
        )
        if not token:
            raise ConfigError(
                f"the chart gave the hub no API token for its {contract.PREWARM_SERVICE!r} service",
                fix=f"install the values `dlworkshop render z2jh` writes (they declare "
                f"hub.services.{contract.PREWARM_SERVICE})",
            )
        return HubState(data=Path(contract.HUB_DATA), proxy_token=None, prewarm_token=token)

    def configure_engine(self, c: Any) -> None:
        traits = kubespawner_traits(self.settings)
        # The chart's user-pod tolerations (scheduling.userPods.tolerations) stay first, as the
        # chart orders them; the GPU pool's follow.
        wanted = traits.pop("tolerations", [])
        chart_set = list(c.KubeSpawner.tolerations) if "tolerations" in c.KubeSpawner else []
        tolerations = [*(t for t in chart_set if t not in wanted), *wanted]
        if tolerations:
            c.KubeSpawner.tolerations = tolerations
        for option, value in traits.items():
            setattr(c.KubeSpawner, option, value)

    def learner_servers(self) -> list[LearnerServer]:
        """From the Kubernetes API, with the hub pod's service account (KubeSpawner's config loader:
        in the cluster, else a kubeconfig), in a loop of its own so it works from any thread."""

        async def listed() -> list[LearnerServer]:
            from kubernetes_asyncio.client import ApiClient, CoreV1Api
            from kubespawner.clients import load_config

            load_config()
            async with ApiClient() as client:
                return await list_learner_servers(
                    CoreV1Api(client), self.namespace, pod_selector(os.environ.get(RELEASE_ENV))
                )

        with ThreadPoolExecutor(1, thread_name_prefix="learner-pods") as pool:
            return pool.submit(asyncio.run, listed()).result()
