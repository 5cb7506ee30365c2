"""The workshop's settings in KubeSpawner's terms: one function per concern, pure, no cluster.

`dlworkshop render z2jh` writes these into the chart's values (the chart hands them to KubeSpawner),
and the hub's Kubernetes backend sets the same keys from `kubespawner_traits`, so the values a
cluster runs with and the hub's own configuration cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from dlworkshop import contract
from dlworkshop.settings import GPU, Settings, format_bytes

# Shared with the Docker backend and the learner image (dlworkshop/contract.py).
WORK_FOLDER = contract.learner.WORK_FOLDER
LEARNER_UID = contract.learner.UID
# The users group of jupyter/docker-stacks images: the work volume is writable by the learner.
LEARNER_FS_GID = 100
GPU_MEMORY_ENV = contract.learner.GPU_MEMORY_ENV
DEFAULT_URL = "/lab"
# The address every cloud's metadata server answers on; learners must never reach it.
CLOUD_METADATA_IP = contract.METADATA_ADDRESS
# The GPU operator's MIG manager partitions a node as this label says (all-1g.10gb: every GPU alike).
MIG_CONFIG_LABEL = "nvidia.com/mig.config"


def kubernetes_quantity(size: int) -> str:
    """Bytes as an exact Kubernetes quantity with binary suffixes (`10Gi`, `512Mi`)."""
    size_text = format_bytes(size)
    return f"{size_text}i" if size_text[-1].isalpha() else size_text


def byte_specification(size: int) -> str:
    """Bytes as KubeSpawner's mem_limit reads them (JupyterHub's ByteSpecification: K/M/G/T are
    powers of 1024, as workshop.yaml's sizes are)."""
    return format_bytes(size)


def split_image(reference: str) -> tuple[str, str]:
    """`registry:5000/team/hub:1.2` -> (`registry:5000/team/hub`, `1.2`); no tag means latest."""
    name, colon, tag = reference.rpartition(":")
    if not colon or "/" in tag:
        return reference, "latest"
    return name, tag


def learner_image(settings: Settings) -> str:
    return settings.image.reference


def gpu_resource_name(settings: Settings) -> str | None:
    """The extended resource a learner's pod asks the NVIDIA device plugin for, if any."""
    policy = settings.resources.gpu.policy
    kubernetes = settings.kubernetes
    if policy == "whole":
        return kubernetes.gpu_resource
    if policy == "shared":
        return kubernetes.shared_gpu_resource
    if policy == "mig":
        # The single strategy offers each slice as a plain GPU; the node selector picks the layout.
        strategy_resource = "nvidia.com/gpu" if kubernetes.mig_strategy == "single" else None
        return kubernetes.mig_resource or strategy_resource or f"nvidia.com/mig-{kubernetes.mig_profile}"
    return None


def gpu_limits(settings: Settings) -> dict[str, int]:
    """Per learner: N whole GPUs, one time-sliced replica, or one MIG slice."""
    name = gpu_resource_name(settings)
    if name is None:
        return {}
    return {name: settings.resources.gpu.gpus_per_learner}


def gpu_memory_cap_mb(gpu: GPU) -> int | None:
    """The TensorFlow memory cap the learner hook applies: set, else a shared GPU's share
    (the GPU settings' one rule, which the Docker and Slurm backends use too)."""
    return gpu.learner_memory_mb(gpu.memory_mb)


def learner_environment(settings: Settings) -> dict[str, str]:
    """resources.extra_env, and the GPU memory cap where the policy sets one."""
    cap = gpu_memory_cap_mb(settings.resources.gpu)
    return {**settings.resources.extra_env, **({GPU_MEMORY_ENV: str(cap)} if cap is not None else {})}


def gpu_node_selector(settings: Settings) -> dict[str, str]:
    """The GPU pool's labels. MIG's single strategy names no slice size in the resource, so without
    labels of the operator's own the pods go to nodes the GPU operator's MIG manager partitioned
    all alike into the profile (its label nvidia.com/mig.config: all-<profile>)."""
    kubernetes = settings.kubernetes
    if settings.resources.gpu.policy == "none":
        return {}
    if (
        kubernetes.gpu_node_selector
        or settings.resources.gpu.policy != "mig"
        or kubernetes.mig_strategy != "single"
    ):
        return dict(kubernetes.gpu_node_selector)
    return {MIG_CONFIG_LABEL: f"all-{kubernetes.mig_profile}"}


def gpu_tolerations(settings: Settings) -> list[dict[str, str]]:
    if settings.resources.gpu.policy == "none":
        return []
    return [toleration.model_dump(exclude_none=True) for toleration in settings.kubernetes.gpu_tolerations]


def cpu_and_memory(settings: Settings) -> dict[str, Any]:
    """KubeSpawner's limits and guarantees. The guarantee is the limit: a room planned to fit gets
    what it planned (QoS Guaranteed), and no learner is OOM-killed for a neighbour's peak."""
    resources = settings.resources
    memory = byte_specification(resources.memory)
    return {
        "cpu_limit": resources.cpu,
        "cpu_guarantee": resources.cpu,
        "mem_limit": memory,
        "mem_guarantee": memory,
    }


def profile_slug(settings: Settings) -> str:
    gpu = settings.resources.gpu
    if gpu.policy == "whole":
        return f"gpu-{gpu.gpus_per_learner}"
    if gpu.policy == "shared":
        return f"gpu-shared-1-in-{gpu.learners_per_gpu}"
    if gpu.policy == "mig":
        return f"mig-{settings.kubernetes.mig_profile}".replace(".", "-").replace("+", "-")
    return "cpu"


def profile_description(settings: Settings) -> str:
    gpu = settings.resources.gpu
    cpu = f"{settings.resources.cpu:g} CPU, {byte_specification(settings.resources.memory)} memory"
    if gpu.policy == "whole":
        count = gpu.gpus_per_learner
        return f"{cpu}, {count} GPU{'s' if count > 1 else ''}"
    if gpu.policy == "shared":
        cap = gpu_memory_cap_mb(gpu)
        return f"{cpu}, one GPU shared by {gpu.learners_per_gpu} learners ({cap} MB GPU memory each)"
    if gpu.policy == "mig":
        return f"{cpu}, a {settings.kubernetes.mig_profile} MIG slice of a GPU"
    return cpu


def learner_profile(settings: Settings) -> dict[str, Any]:
    """The workshop's one profile (KubeSpawner skips the choice page when there is one). Its
    override carries what the GPU policy adds: the extended resource and the memory cap."""
    override: dict[str, Any] = {}
    limits = gpu_limits(settings)
    if limits:
        quantities = {name: str(count) for name, count in limits.items()}
        # Extended resources cannot be overcommitted: Kubernetes wants requests equal to limits.
        override["extra_resource_limits"] = quantities
        override["extra_resource_guarantees"] = dict(quantities)
    environment = learner_environment(settings)
    if environment:
        override["environment"] = environment
    return {
        "display_name": settings.workshop.name,
        "slug": profile_slug(settings),
        "description": profile_description(settings),
        "default": True,
        "kubespawner_override": override,
    }


def container_security_context() -> dict[str, Any]:
    """What the Docker backend enforces with cap_drop and no-new-privileges, in Kubernetes' words
    (KubeSpawner adds runAsUser from uid and allowPrivilegeEscalation)."""
    return {
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def placeholder_count(settings: Settings) -> int:
    placeholders = settings.kubernetes.placeholders
    return settings.learners.concurrent if placeholders == "auto" else placeholders


def placeholder_resources(settings: Settings) -> dict[str, dict[str, str]]:
    """What one learner's pod asks for, GPU included, so a placeholder holds room on the node pool
    a learner lands on (without the GPU it would hold a CPU node)."""
    resources = settings.resources
    amounts = {"cpu": f"{resources.cpu:g}", "memory": kubernetes_quantity(resources.memory)}
    amounts.update({name: str(count) for name, count in gpu_limits(settings).items()})
    return {"requests": dict(amounts), "limits": dict(amounts)}


def kubespawner_traits(settings: Settings) -> dict[str, Any]:
    """KubeSpawner's configuration that follows from workshop.yaml, trait name -> value.

    The chart sets these from the rendered values; the hub's Kubernetes backend sets the same
    (tests prove both agree). `tolerations` is the GPU pool's: the chart puts its user-pod
    tolerations (scheduling.userPods.tolerations) before them.
    """
    traits: dict[str, Any] = {
        "image": learner_image(settings),
        "image_pull_policy": settings.kubernetes.image_pull_policy,
        **cpu_and_memory(settings),
        "uid": LEARNER_UID,
        "fs_gid": LEARNER_FS_GID,
        "allow_privilege_escalation": False,
        "container_security_context": container_security_context(),
        "storage_capacity": kubernetes_quantity(settings.kubernetes.storage_size),
        # JupyterHub's bound on a whole start, queue included (the hub bounds the start once
        # admitted by hub.start_timeout, and KubeSpawner's own waits with it).
        "start_timeout": contract.QUEUED_START_TIMEOUT,
        "default_url": DEFAULT_URL,
        "profile_list": [learner_profile(settings)],
    }
    if settings.kubernetes.storage_class is not None:
        traits["storage_class"] = settings.kubernetes.storage_class
    if gpu_node_selector(settings):
        traits["node_selector"] = gpu_node_selector(settings)
    if gpu_tolerations(settings):
        traits["tolerations"] = gpu_tolerations(settings)
    return traits
