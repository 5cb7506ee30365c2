"""What of workshop.yaml the Zero to JupyterHub chart cannot express. Refused when the settings load
(hub.backend: kubernetes), each at the key it names (dlworkshop/settings/support.py), so nothing is
silently dropped: `check`, `render z2jh` and the hub inside the cluster all stop on the same message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dlworkshop.settings.support import DockerOnly, Problem, docker_only_problems, explicitly_set, register

if TYPE_CHECKING:
    from dlworkshop.settings import Settings

# Keys only the Docker backend reads, and what stands for them on Kubernetes.
DOCKER_ONLY = DockerOnly(
    backend="kubernetes",
    keys={
        ("hub", "bind"): "the chart's proxy-public Service is where learners connect",
        ("hub", "port"): "the chart's proxy-public Service listens on 80 (443 with proxy.https)",
        ("hub", "network"): "pods share the cluster network; singleuser.networkPolicy limits it",
        ("hub", "data_volume"): "the chart keeps the hub's state on its own PVC (hub.db.pvc)",
        ("hub", "container_name"): "the chart names the hub's pod after the Helm release",
        ("hub", "image_archive"): "a cluster pulls the hub image from a registry",
        ("image", "archive"): "a cluster pulls the learner image from a registry",
        ("resources", "pids"): "a pod's process limit is the kubelet's podPidsLimit, set per node",
        ("resources", "disk_free_min"): "a learner's disk is a PVC of kubernetes.storage_size",
        ("resources", "log_max"): "the kubelet rotates every container's log (containerLogMaxSize, "
        "10Mi, and containerLogMaxFiles, 5, by default), set per node, not by the chart",
        ("hub", "tls", "port"): "the chart's proxy-public Service serves TLS on 443",
        ("resources", "gpu", "devices"): "the NVIDIA device plugin picks the GPUs",
        (
            "resources",
            "gpu",
            "mig_devices",
        ): "the NVIDIA device plugin picks the MIG slices (kubernetes.mig_profile)",
        ("resources", "gpu", "docker_device_requests"): "the NVIDIA device plugin hands GPUs to pods",
        ("prewarm", "spares"): "the chart's scheduling.userPlaceholder keeps room for late arrivals",
    },
    disk="a learner's work folder is a PVC: its size, kubernetes.storage_size, is the quota",
    tmp="a pod's scratch space is the node's ephemeral storage (no read-only root here)",
    extra_mounts="a host folder exists on one node only; add a shared volume to "
    "singleuser.storage.extraVolumes and extraVolumeMounts in your own values",
    shared_folder="needs a ReadWriteMany volume",
    image_archive="a cluster pulls images from a registry: push the image there and use pull (or build)",
)

# kubernetes.* keys that only one GPU policy reads.
POLICY_ONLY: dict[str, tuple[str, ...]] = {
    "gpu_resource": ("whole",),
    "shared_gpu_resource": ("shared",),
    "time_slicing_replicas": ("shared",),
    "mig_profile": ("mig",),
    "mig_resource": ("mig",),
    "mig_strategy": ("mig",),
    "gpu_node_selector": ("whole", "shared", "mig"),
    "gpu_tolerations": ("whole", "shared", "mig"),
}


def unsupported_settings(settings: Settings) -> list[Problem]:
    problems = docker_only_problems(settings, DOCKER_ONLY)
    if settings.hub.tls.mode == "self-signed":
        problems.append(
            (
                ("hub", "tls", "mode"),
                "Z2JH has no self-signed mode; use letsencrypt, files (proxy.https manual) "
                "or none (TLS at your ingress or load balancer)",
            )
        )
    problems.extend(_tls_problems(settings))
    if settings.hub.extra_config is not None:
        problems.append(
            (
                ("hub", "extra_config"),
                "the chart runs the hub's configuration: put the site's files in hub.extraConfig of "
                "your own values (helm -f values.yaml -f yours.yaml), run after ours; remove it here",
            )
        )
    problems.extend(_gpu_problems(settings))
    return problems


def _tls_problems(settings: Settings) -> list[Problem]:
    """A domain is served over TLS, by one of: Let's Encrypt or key files (hub.tls.mode), the
    operator's TLS Secret (kubernetes.tls_secret), or an Ingress (kubernetes.ingress)."""
    tls = settings.hub.tls
    kubernetes = settings.kubernetes
    problems: list[Problem] = []
    routes = [name for name in ("tls_secret", "ingress") if getattr(kubernetes, name) is not None]
    if tls.domain and tls.mode == "none" and not routes:
        problems.append(
            (
                ("hub", "tls", "domain"),
                "a domain served over plain HTTP sends the access code in clear: set hub.tls.mode "
                "letsencrypt (with email), kubernetes.tls_secret or kubernetes.ingress",
            )
        )
    for name in routes:
        if not tls.domain:
            problems.append((("kubernetes", name), "needs hub.tls.domain, the name it serves"))
        if tls.mode != "none":
            problems.append(
                (
                    ("kubernetes", name),
                    f"serves the certificate itself; hub.tls.mode {tls.mode} would serve another: set it to none",
                )
            )
    if len(routes) == 2:
        problems.append(
            (
                ("kubernetes", "tls_secret"),
                "the Ingress terminates TLS with kubernetes.ingress.tls_secret; remove this one",
            )
        )
    if kubernetes.existing_secret is not None and tls.mode == "files":
        problems.append(
            (
                ("hub", "tls", "mode"),
                "files puts the TLS key into the values; with kubernetes.existing_secret keep it in a "
                "kubernetes.io/tls Secret named by kubernetes.tls_secret (and set mode none)",
            )
        )
    return problems


def _gpu_problems(settings: Settings) -> list[Problem]:
    gpu = settings.resources.gpu
    kubernetes = settings.kubernetes
    problems: list[Problem] = [
        (
            ("kubernetes", name),
            f"only GPU policy {' or '.join(policies)} reads it (the policy is {gpu.policy})",
        )
        for name, policies in POLICY_ONLY.items()
        if gpu.policy not in policies and explicitly_set(settings, ("kubernetes", name))
    ]
    if gpu.policy != "none" and settings.image.variant == "cpu":
        problems.append(
            (
                ("image", "variant"),
                f"GPU policy {gpu.policy} gives each learner a GPU the cpu image cannot use; use cuda",
            )
        )
    if gpu.policy == "shared":
        if gpu.memory_cap_mb is None and gpu.memory_mb is None:
            problems.append(
                (
                    ("resources", "gpu", "memory_mb"),
                    "a shared GPU on Kubernetes needs the memory of one GPU (MB) to cap each learner's "
                    "share, or resources.gpu.memory_cap_mb (the hub cannot run nvidia-smi on the nodes)",
                )
            )
        replicas = kubernetes.time_slicing_replicas
        if replicas is not None and replicas != gpu.learners_per_gpu:
            problems.append(
                (
                    ("kubernetes", "time_slicing_replicas"),
                    f"the device plugin's {replicas} replicas per GPU disagree with per_learner "
                    f"{gpu.per_learner:g} ({gpu.learners_per_gpu} learners per GPU); make them agree",
                )
            )
    if gpu.policy == "mig" and kubernetes.mig_profile is None:
        problems.append(
            (
                ("kubernetes", "mig_profile"),
                "policy mig on Kubernetes needs the MIG profile the nodes are partitioned into, e.g. 1g.10gb",
            )
        )
    return problems


register("kubernetes", unsupported_settings)
