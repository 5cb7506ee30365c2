"""The sections only a cluster engine reads: `kubernetes` (the Zero to JupyterHub chart) and `slurm`
(batchspawner on a login node)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field, field_validator

from dlworkshop.settings.base import StrictModel, count_or_auto
from dlworkshop.settings.units import ByteSize, parse_bytes

# The extended resources NVIDIA's device plugin advertises: whole GPUs, time-sliced replicas (renamed
# or not), and MIG slices under the mixed strategy (`nvidia.com/mig-1g.10gb`, `nvidia.com/mig-1c.3g.20gb`).
NVIDIA_RESOURCE = re.compile(r"nvidia\.com/(gpu|gpu\.shared|mig-(\d+c\.)?\d+g\.\d+gb(\+me)?)")
MIG_PROFILE = re.compile(r"(\d+c\.)?\d+g\.\d+gb(\+me)?")


def _nvidia_resource(value: str | None) -> str | None:
    if value is not None and not NVIDIA_RESOURCE.fullmatch(value):
        raise ValueError(
            f"{value} is not a resource NVIDIA's device plugin advertises "
            "(nvidia.com/gpu, nvidia.com/gpu.shared or nvidia.com/mig-<profile> such as nvidia.com/mig-1g.10gb)"
        )
    return value


NvidiaResource = Annotated[str, AfterValidator(_nvidia_resource)]


class KubernetesToleration(StrictModel):
    """A pod toleration, as Kubernetes spells it, for the taint on the GPU node pool."""

    key: str
    operator: Literal["Exists", "Equal"] = "Exists"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = "NoSchedule"


# A Kubernetes object's name (RFC 1123 subdomain): a Secret, an IngressClass, a StorageClass.
KubernetesName = Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")]
# A CPU or memory quantity as Kubernetes writes it: 250m, 0.5, 512Mi, 1Gi.
KubernetesQuantity = Annotated[str, Field(pattern=r"^\d+(\.\d+)?(m|k|Ki|M|Mi|G|Gi|T|Ti)?$")]


class KubernetesIngress(StrictModel):
    """An Ingress in front of the chart's proxy, terminating TLS for hub.tls.domain."""

    class_name: KubernetesName = Field(description="The IngressClass (ingressClassName), e.g. nginx.")
    tls_secret: KubernetesName = Field(
        description="The kubernetes.io/tls Secret holding the domain's certificate (cert-manager can make it)."
    )
    annotations: dict[str, str] = Field(default={}, description="The Ingress's annotations.")


class KubernetesRequests(StrictModel):
    """What a pod of the chart asks the scheduler for (its resources.requests)."""

    cpu: KubernetesQuantity
    memory: KubernetesQuantity


class Kubernetes(StrictModel):
    """hub.backend kubernetes: the Zero to JupyterHub chart (`dlworkshop render z2jh`). What a
    cluster needs beyond the workshop itself; nothing here names a namespace or a release."""

    chart_version: str = Field(
        default="4.4.0", description="Z2JH chart version the values are checked against."
    )
    image_pull_policy: Literal["IfNotPresent", "Always", "Never"] = "IfNotPresent"
    storage_class: str | None = Field(
        default=None, description="StorageClass of each learner's work PVC (default: the cluster's)."
    )
    storage_size: ByteSize = Field(default=parse_bytes("10G"), description="Size of each learner's work PVC.")
    gpu_node_selector: dict[str, str] = Field(default={}, description="Node labels of the GPU pool.")
    gpu_tolerations: list[KubernetesToleration] = Field(
        default=[KubernetesToleration(key="nvidia.com/gpu")],
        description="Tolerations for the GPU pool's taint (GKE and the GPU operator taint nvidia.com/gpu).",
    )
    gpu_resource: NvidiaResource = Field(
        default="nvidia.com/gpu", description="policy whole: the resource per GPU."
    )
    shared_gpu_resource: NvidiaResource = Field(
        default="nvidia.com/gpu",
        description="policy shared: one time-sliced replica (nvidia.com/gpu.shared with renameByDefault).",
    )
    time_slicing_replicas: int | None = Field(
        default=None,
        ge=2,
        description="policy shared: replicas per GPU in the device plugin's time-slicing config (default: 1/per_learner).",
    )
    mig_profile: str | None = Field(
        default=None, description="policy mig: the slice each learner gets, e.g. 1g.10gb."
    )
    mig_resource: NvidiaResource | None = Field(
        default=None, description="policy mig: default nvidia.com/mig-<mig_profile> (the mixed strategy)."
    )
    placeholders: Annotated[int | Literal["auto"], BeforeValidator(count_or_auto)] = Field(
        default="auto",
        description="Placeholder pods holding room for learners (auto: the learners expected at once).",
    )
    tls_secret: KubernetesName | None = Field(
        default=None,
        description="An existing kubernetes.io/tls Secret the proxy serves hub.tls.domain with "
        "(proxy.https type secret), instead of Let's Encrypt or key files in the values.",
    )
    ingress: KubernetesIngress | None = Field(
        default=None, description="Route hub.tls.domain through this Ingress (it terminates TLS)."
    )
    image_pull_secrets: list[KubernetesName] = Field(
        default=[],
        description="Secrets of the private registry the hub and learner images come from (every pod).",
    )
    existing_secret: KubernetesName | None = Field(
        default=None,
        description="Keep the hub's secrets (workshop.yaml, accounts.csv) in this Secret, made by "
        "`render z2jh --secret-out`, instead of the values (hub.existingSecret).",
    )
    hub_storage_class: KubernetesName | None = Field(
        default=None, description="StorageClass of the hub database's PVC (default: the cluster's)."
    )
    hub_requests: KubernetesRequests = Field(
        default=KubernetesRequests(cpu="200m", memory="512Mi"), description="The hub pod's requests."
    )
    proxy_requests: KubernetesRequests = Field(
        default=KubernetesRequests(cpu="200m", memory="512Mi"),
        description="The proxy pods' requests (and Let's Encrypt's Traefik).",
    )
    mig_strategy: Literal["mixed", "single"] = Field(
        default="mixed",
        description="policy mig: how the device plugin offers slices: mixed (nvidia.com/mig-<profile>) "
        "or single (nvidia.com/gpu on nodes partitioned alike, as GKE's own MIG does).",
    )
    metadata_iptables: bool = Field(
        default=True,
        description="Also block the cloud metadata server with the chart's iptables init container in "
        "each learner pod. The NetworkPolicy blocks it only where the cluster's network plugin enforces "
        "NetworkPolicy; the init container is privileged, which a namespace enforcing the restricted "
        "Pod Security Standard refuses: turn it off only where both hold.",
    )

    @field_validator("mig_profile")
    @classmethod
    def _mig_profile_shape(cls, value: str | None) -> str | None:
        if value is not None and not MIG_PROFILE.fullmatch(value):
            raise ValueError(f"{value} is not a MIG profile such as 1g.10gb or 3g.40gb")
        return value


# A Slurm name (partition, account, QOS, reservation, GRES type): no spaces, commas or colons.
SLURM_NAME = re.compile(r"[A-Za-z0-9_.+-]+")
# Slurm's --time: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS.
SLURM_TIME = re.compile(r"\d+|\d+:\d{2}(:\d{2})?|\d+-\d+(:\d{2}){0,2}")


def _slurm_name(value: str | None) -> str | None:
    if value is not None and not SLURM_NAME.fullmatch(value):
        raise ValueError(f"{value!r} is not a Slurm name (letters, digits, _ . + -)")
    return value


SlurmName = Annotated[str, AfterValidator(_slurm_name)]


def _slurm_time(value: str) -> str:
    if not SLURM_TIME.fullmatch(str(value)):
        raise ValueError(f"{value!r} is not a Slurm time limit such as 8:00:00, 480 or 1-00:00:00")
    return str(value)


class SlurmNode(StrictModel):
    """One node of the partition, given by hand so `check` can plan the room (sinfo is not asked)."""

    name: str = Field(description="Node name or a hostlist such as gpu[01-04] (count then says how many).")
    count: int = Field(default=1, ge=1, description="Nodes of this shape.")
    cpus: int = Field(ge=1)
    memory: ByteSize = Field(description="Memory Slurm can give jobs (RealMemory), e.g. 512G.")
    gpus: int = Field(default=0, ge=0, description="GPUs (gres/gpu) on the node.")


class SlurmAccounts(StrictModel):
    """The learners' Unix accounts on the cluster: `dlw-01..N`, the same UID on every node, homes
    0700. The hub maps each workshop login onto one of them the first time it starts a server."""

    prefix: str = Field(default="dlw-", pattern=r"^[a-z][a-z0-9_-]{0,15}$")
    count: Annotated[int | Literal["auto"], BeforeValidator(count_or_auto)] = Field(
        default="auto",
        description="Accounts to create (auto: every learner, pre-warmed seat, admin and the smoke-test user).",
    )
    first_uid: int = Field(
        default=2001, ge=1000, le=2**31 - 2, description="UID (and GID) of the first account."
    )
    group: str = Field(
        default="dlw-learners",
        pattern=r"^[a-z][a-z0-9_-]{0,31}$",
        description="Group of every account: the hub's sudo rules name it.",
    )
    group_gid: int = Field(default=2000, ge=1000, le=2**31 - 2)
    home_root: str = Field(
        default="/home", description="Shared folder the homes are made in (every node sees it)."
    )


class Slurm(StrictModel):
    """hub.backend slurm: each learner's server is a Slurm job (batchspawner), submitted by the hub
    on the login node through sudo as the learner's own Unix account."""

    partition: SlurmName | None = Field(
        default=None, description="Partition of the jobs (default: the cluster's)."
    )
    reservation: SlurmName | None = Field(
        default=None,
        description="Reservation the jobs run in; the site creates it (`dlworkshop check` prints the line).",
    )
    account: SlurmName | None = Field(
        default=None, description="Slurm account (where the site runs slurmdbd)."
    )
    qos: SlurmName | None = Field(default=None, description="QOS of the jobs (where the site runs slurmdbd).")
    time_limit: Annotated[str, BeforeValidator(_slurm_time)] = Field(
        default="8:00:00", description="--time of a learner's job: the server stops when it is reached."
    )
    gpu_type: SlurmName | None = Field(
        default=None, description="policy whole: the GRES type, e.g. a100 (--gres=gpu:a100:N)."
    )
    mig_profile: SlurmName | None = Field(
        default=None,
        description="policy mig: the MIG GRES type of one slice, e.g. 1g.10gb (--gres=gpu:1g.10gb:1).",
    )
    shards_per_gpu: int | None = Field(
        default=None,
        ge=1,
        description="policy shared: the shards each GPU has in gres.conf (default: the learners per GPU).",
    )
    environment: Literal["venv", "apptainer"] = Field(
        default="venv",
        description="venv: the learner environment on shared storage (env_prefix); apptainer: the image as a SIF.",
    )
    env_prefix: str = Field(
        default="/opt/dlworkshop-env",
        pattern=r"^/[^\s:]*$",
        description="Where every node sees the learner environment (a shared filesystem).",
    )
    apptainer_image: str | None = Field(
        default=None, description="environment apptainer: the SIF file on shared storage."
    )
    hub_address: str | None = Field(
        default=None,
        description="How compute nodes reach the hub's API (default: the login node's hostname).",
    )
    hub_user: str = Field(
        default="dlworkshop-hub",
        pattern=r"^[a-z][a-z0-9_-]{0,31}$",
        description="The unprivileged account the hub runs as (sudo rules: sbatch, squeue, scancel as learners).",
    )
    poll_interval: int = Field(
        default=30, ge=5, description="Seconds between the hub's checks that each learner's job still runs."
    )
    nodes: list[SlurmNode] = Field(
        default=[], description="The partition's nodes, for `dlworkshop check`'s capacity table."
    )
    accounts: SlurmAccounts = SlurmAccounts()
    learner_jobs: int = Field(
        default=0,
        ge=0,
        le=16,
        description="Jobs a learner may run from their terminal beside their server, each at most "
        "the server's size: the limits the deploy sets on each learner's association (0: none).",
    )
