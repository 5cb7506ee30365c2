"""The settings model: `workshop.yaml` read once, validated, and handed to every other part.

Data flows one way: workshop.yaml -> Settings -> {image build args, hub config, ansible vars,
smoke-test budgets}. Nothing else reads the YAML file.
"""

from __future__ import annotations

import os
import re
from datetime import datetime
from fractions import Fraction
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, InitErrorDetails, PydanticCustomError

from dlworkshop import contract
from dlworkshop.errors import ConfigError

DEFAULT_CONFIG_NAME = contract.CONFIG_NAME
CONFIG_ENV = contract.CONFIG_ENV

_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_bytes(value: Any) -> int:
    """Parse a Docker-style size (`512M`, `2G`, `1.5g`, or a plain number of bytes)."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as 2G or 512M")
    if isinstance(value, int):
        return value
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*", str(value), flags=re.IGNORECASE)
    if not match:
        raise ValueError(f"{value!r} is not a size; write it like 2G or 512M")
    number, unit = match.groups()
    return int(float(number) * _SIZE_UNITS[unit.lower()])


def format_bytes(size: int) -> str:
    """The inverse of parse_bytes, as Docker and JupyterHub accept it (`2G`, `512M`)."""
    for unit in ("T", "G", "M", "K"):
        factor = _SIZE_UNITS[unit.lower()]
        if size >= factor and size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)


ByteSize = Annotated[int, BeforeValidator(parse_bytes)]


def _relative_to_the_file(path: Path, info: ValidationInfo) -> Path:
    """A relative path in workshop.yaml means relative to that file, wherever the command runs."""
    base = (info.context or {}).get("base_dir")
    return path if path.is_absolute() or base is None else Path(base) / path


# A file named in workshop.yaml: `up`, `deploy` and `check` all read it from the same place.
ConfigPath = Annotated[Path, AfterValidator(_relative_to_the_file)]


class StrictModel(BaseModel):
    """Unknown keys are errors: a typo in workshop.yaml must not be silently ignored."""

    model_config = ConfigDict(extra="forbid", validate_default=True, frozen=True)


class WorkshopInfo(StrictModel):
    export_notice: str | None = Field(
        default=None,
        description="What a learner who tries to log in after the workshop ended is told: where to "
        "get the work `dlworkshop export` saved (a URL or a sentence).",
    )
    name: str = "Introduction to deep learning"
    start: datetime | None = Field(default=None, description="When learners arrive.")
    end: datetime | None = Field(
        default=None, description="When the workshop ends (the end of a Slurm reservation)."
    )

    @model_validator(mode="after")
    def _ends_after_it_starts(self) -> WorkshopInfo:
        if self.start and self.end and (self.end.tzinfo is None) != (self.start.tzinfo is None):
            raise ValueError("give start and end both with a UTC offset, or both without")
        if self.start and self.end and self.end <= self.start:
            raise ValueError(f"end ({self.end.isoformat()}) is not after start ({self.start.isoformat()})")
        return self


class Learners(StrictModel):
    count: int | None = Field(default=None, ge=1, le=1000)
    names: list[str] | None = None
    expected_concurrent: int | None = Field(
        default=None, ge=1, description="Learners expected at once; allows a quota overcommit."
    )
    smoke_test_user: str = "smoke-test"

    @model_validator(mode="after")
    def _count_or_names(self) -> Learners:
        if self.count is None and not self.names:
            raise ValueError("give either a learner count or a list of names")
        if self.count is not None and self.names and self.count != len(self.names):
            raise ValueError(f"count {self.count} disagrees with the {len(self.names)} names listed")
        return self

    @property
    def total(self) -> int:
        return self.count if self.count is not None else len(self.names or [])

    @property
    def concurrent(self) -> int:
        return self.expected_concurrent or self.total


class GitHubAuth(StrictModel):
    client_id: str
    client_secret: SecretStr
    callback_url: str | None = None
    allowed_organizations: list[str] = []


class Auth(StrictModel):
    mode: Literal["shared-code", "accounts", "github"] = "shared-code"
    access_code: SecretStr | None = Field(
        default=None, description="The code learners type in `shared-code` mode."
    )
    accounts_file: ConfigPath | None = Field(
        default=None, description="CSV of usernames and password hashes from `dlworkshop accounts generate`."
    )
    github: GitHubAuth | None = None
    admins: list[str] = []
    helpers: list[str] = Field(
        default=[],
        description="Helpers: they see the room (`dlworkshop status`) and can open any learner's "
        "JupyterLab (every such access is logged), but are not admins.",
    )
    login_attempts_per_minute: int = Field(
        default=5,
        ge=1,
        description="Failed logins under one name from one address per minute before each further "
        "failure under that name is answered after a growing delay (never a lockout).",
    )
    login_attempts_per_minute_per_address: int = Field(
        default=30,
        ge=1,
        description="Failed logins from one address (a classroom behind one NAT) per minute before "
        "every further failure from it is delayed; correct logins are never delayed by others' failures.",
    )

    @model_validator(mode="after")
    def _mode_needs_its_fields(self) -> Auth:
        if self.mode == "shared-code" and not (self.access_code and self.access_code.get_secret_value()):
            raise ValueError("mode shared-code needs auth.access_code (the code learners type)")
        if self.mode == "github" and self.github is None:
            raise ValueError("mode github needs auth.github with client_id and client_secret")
        if self.mode == "accounts" and self.accounts_file is None:
            raise ValueError(
                "mode accounts needs auth.accounts_file, the hashed CSV `dlworkshop accounts generate N` writes"
            )
        if self.login_attempts_per_minute_per_address < self.login_attempts_per_minute:
            raise ValueError(
                f"login_attempts_per_minute_per_address ({self.login_attempts_per_minute_per_address}) "
                f"must be at least login_attempts_per_minute ({self.login_attempts_per_minute}): "
                "a room shares one address"
            )
        return self


def _off_when_empty(value: Any) -> Any:
    """`ca_bundle: off` reads as false in YAML, and an empty value means none either."""
    return "off" if value is None or value is False else value


class Image(StrictModel):
    name: str = "dlworkshop/learner"
    tag: str = "latest"
    variant: Literal["cpu", "cuda"] = "cpu"
    base_image: str = Field(
        default="python:3.11-slim-bookworm",
        description="A Debian/Ubuntu image with Python 3.11; `dlworkshop image base` builds one offline.",
    )
    source: Literal["build", "pull", "archive"] = "build"
    archive: ConfigPath | None = Field(default=None, description="A `docker save` file, for source: archive.")
    data_mirror: str | None = Field(default=None, description="Folder or URL laid out by dataset name.")
    ca_bundle: Annotated[Literal["auto", "off"] | ConfigPath, BeforeValidator(_off_when_empty)] = Field(
        default="auto",
        description="The CAs every build step (apt, pip, npm) and data download trusts: auto = this "
        "host's own bundle (as the host trusts a TLS-intercepting proxy), off = each tool's own, or a "
        "PEM bundle's path.",
    )

    @property
    def reference(self) -> str:
        return f"{self.name}:{self.tag}"

    @model_validator(mode="after")
    def _archive_needs_file(self) -> Image:
        if self.source == "archive" and self.archive is None:
            raise ValueError("source archive needs image.archive, the path of a `docker save` file")
        return self


def _parse_share(value: Any) -> Any:
    """Accept `1/3` as well as 0.333 for a GPU share."""
    if isinstance(value, str) and "/" in value:
        numerator, _, denominator = value.partition("/")
        try:
            return float(Fraction(int(numerator), int(denominator)))
        except (ValueError, ZeroDivisionError):
            raise ValueError(f"{value!r} is not a fraction like 1/2") from None
    return value


class GPU(StrictModel):
    policy: Literal["none", "whole", "shared", "mig"] = "none"
    per_learner: Annotated[float, BeforeValidator(_parse_share)] = Field(
        default=1.0,
        gt=0,
        description="whole: GPUs per learner (1, 2...); shared: a fraction of one GPU (1/2, 1/3...).",
    )
    devices: list[str] | Literal["auto"] = Field(
        default="auto", description="GPU UUIDs or indexes, or `auto` to ask nvidia-smi on the host."
    )
    memory_mb: int | None = Field(
        default=None, ge=256, description="Memory of one GPU; `auto` inventories read it from nvidia-smi."
    )
    mig_devices: list[str] = Field(default=[], description="MIG device UUIDs, one per learner slot.")
    memory_cap_mb: int | None = Field(
        default=None, ge=128, description="Per-learner TensorFlow memory cap; default: the learner's share."
    )
    docker_device_requests: bool = Field(
        default=True,
        description="Hand devices to containers as Docker device requests (nvidia). Off only to try the "
        "quota bookkeeping on a host without GPUs (labels and environment are still set).",
    )

    @model_validator(mode="after")
    def _share_fits_policy(self) -> GPU:
        if self.policy == "whole" and self.per_learner != int(self.per_learner):
            raise ValueError(f"per_learner: {self.per_learner} is not a whole number of GPUs")
        if self.policy == "shared":
            if self.per_learner >= 1:
                raise ValueError("per_learner: a shared GPU gives each learner less than one; use whole")
            learners_per_gpu = 1 / self.per_learner
            if abs(learners_per_gpu - round(learners_per_gpu)) > 1e-6:
                raise ValueError(
                    f"per_learner: {self.per_learner:g} does not divide one GPU; use 1/2, 1/3, 1/4..."
                )
        return self

    @property
    def learners_per_gpu(self) -> int:
        return round(1 / self.per_learner) if self.policy == "shared" else 1


def _absolute_container_path(value: str) -> str:
    path = PurePosixPath(value)
    if not path.is_absolute() or ".." in path.parts:
        raise ValueError(f"{value} is not an absolute path (write it like /srv/datasets)")
    return str(path)


AbsolutePath = Annotated[str, AfterValidator(_absolute_container_path)]
# Where a mount would hide the learner's work folder, home or scratch space.
_PATHS_A_MOUNT_MUST_NOT_COVER = {
    str(parent) for parent in PurePosixPath(contract.learner.WORK_FOLDER).parents
} | {contract.learner.WORK_FOLDER, "/tmp"}


class ExtraMount(StrictModel):
    """A folder of the host mounted read-only into every learner's container (a site's datasets)."""

    source: AbsolutePath = Field(description="The folder on the host that runs learners' containers.")
    target: AbsolutePath = Field(description="Where learners see it, e.g. /srv/datasets.")

    @field_validator("target")
    @classmethod
    def _target_hides_nothing(cls, value: str) -> str:
        if value in _PATHS_A_MOUNT_MUST_NOT_COVER:
            raise ValueError(f"{value} would hide the learner's own files; mount it elsewhere (/srv/...)")
        return value


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Set per learner by the hub and JupyterHub: a site's value would break quotas or the login.
_ENV_THE_HUB_SETS = re.compile(r"JUPYTERHUB_.*|CPU_LIMIT|MEM_LIMIT|NVIDIA_VISIBLE_DEVICES|DLWORKSHOP_GPU_.*")


def _extra_env_names(value: dict[str, str]) -> dict[str, str]:
    for name in value:
        if not _ENV_NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not an environment variable name")
        if _ENV_THE_HUB_SETS.fullmatch(name):
            raise ValueError(f"{name} is set by the hub for each learner; it cannot be overridden")
    return value


class Resources(StrictModel):
    cpu: float = Field(default=1.0, gt=0, description="CPUs per learner (a limit, like docker --cpus).")
    memory: ByteSize = Field(default=parse_bytes("2G"), description="Memory limit per learner.")
    pids: int = Field(default=512, ge=32, description="Processes per learner container.")
    disk: ByteSize | None = Field(
        default=parse_bytes("5G"),
        description="Hard size of each learner's work folder (~/work), enforced by the storage "
        "(a fixed-size file system per learner); null: no limit.",
    )
    tmp: ByteSize | None = Field(
        default=None,
        description="Size of /tmp, and of the home folder outside ~/work, each (in memory: what a "
        "learner writes there counts against resources.memory); default a quarter of memory, at most "
        "512M. The rest of the container is read-only.",
    )
    disk_free_min: ByteSize = Field(
        default=parse_bytes("2G"), description="Free disk the host must keep; spawns refused below it."
    )
    log_max: ByteSize = Field(
        default=parse_bytes("30M"),
        description="Disk the engine may keep of each learner's and the hub's output (container logs, "
        "rotated over 3 files; on Slurm the job's log file), whatever the engine's defaults.",
    )
    shared_folder: bool | None = Field(
        default=None,
        description="An instructor's folder, read-only at ~/work/shared in every learner "
        "(`dlworkshop share` fills it). Default: on where the backend can mount one (Docker).",
    )
    extra_mounts: list[ExtraMount] = Field(
        default=[], description="Host folders mounted read-only into every learner's container."
    )
    extra_env: Annotated[dict[str, str], AfterValidator(_extra_env_names)] = Field(
        default={}, description="Environment variables set in every learner's container."
    )
    gpu: GPU = GPU()

    @field_validator("memory")
    @classmethod
    def _memory_at_least_256m(cls, value: int) -> int:
        if value < parse_bytes("256M"):
            raise ValueError(f"{format_bytes(value)} is too little for TensorFlow; give at least 256M")
        return value

    @field_validator("disk")
    @classmethod
    def _disk_at_least_64m(cls, value: int | None) -> int | None:
        if value is not None and value < parse_bytes("64M"):
            raise ValueError(f"{format_bytes(value)} is too small for a work folder; give at least 64M")
        return value

    @field_validator("log_max")
    @classmethod
    def _log_max_at_least_1m(cls, value: int) -> int:
        if value < parse_bytes("1M"):
            raise ValueError(
                f"{format_bytes(value)} would lose the lines a start failure leaves; give at least 1M"
            )
        return value

    @field_validator("tmp")
    @classmethod
    def _tmp_at_least_16m(cls, value: int | None) -> int | None:
        if value is not None and value < parse_bytes("16M"):
            raise ValueError(f"{format_bytes(value)} is too small for /tmp; give at least 16M")
        return value

    @property
    def tmp_size(self) -> int:
        """Bytes of each of the learner's in-memory scratch folders (/tmp, the home folder)."""
        return self.tmp if self.tmp is not None else min(parse_bytes("512M"), self.memory // 4)

    @model_validator(mode="after")
    def _mounts_fit_together(self) -> Resources:
        if self.tmp is not None and self.tmp >= self.memory:
            raise ValueError(
                f"tmp ({format_bytes(self.tmp)}) must be smaller than memory ({format_bytes(self.memory)}): "
                "what a learner writes to /tmp counts against their memory"
            )
        targets = [mount.target for mount in self.extra_mounts]
        if len(set(targets)) != len(targets):
            raise ValueError("extra_mounts: two mounts have the same target")
        if self.shared_folder is not False and contract.learner.SHARED_FOLDER in targets:
            raise ValueError(
                f"extra_mounts: {contract.learner.SHARED_FOLDER} is the instructor's shared folder"
            )
        return self


class Culling(StrictModel):
    idle_timeout: int = Field(default=3600, ge=60, description="Seconds idle before a server is stopped.")
    every: int = Field(default=300, ge=10, description="Seconds between culler sweeps.")
    max_age: int = Field(default=0, ge=0, description="Stop servers older than this (0: never).")


class TLS(StrictModel):
    mode: Literal["none", "self-signed", "letsencrypt", "files"] = "none"
    domain: str | None = Field(default=None, description="The name (or IP address) learners open.")
    port: int = Field(
        default=443,
        ge=1,
        le=65535,
        description="Where the TLS endpoint listens (`dlworkshop up`; a deploy serves 443).",
    )
    email: str | None = None
    certificate: ConfigPath | None = None
    key: ConfigPath | None = None
    acme_directory: str = "https://acme-v02.api.letsencrypt.org/directory"

    @model_validator(mode="after")
    def _mode_needs_its_fields(self) -> TLS:
        if self.mode == "letsencrypt" and not (self.domain and self.email):
            raise ValueError("mode letsencrypt needs a public domain and a contact email")
        if self.mode == "files" and not (self.certificate and self.key):
            raise ValueError("mode files needs certificate and key paths")
        return self


class Hub(StrictModel):
    backend: Literal["docker", "kubernetes", "slurm"] = Field(
        default="docker", description="The engine that runs learners' servers (hub/backends/)."
    )
    image: str = "dlworkshop/hub:latest"
    bind: str = Field(default="127.0.0.1", description="Address the hub's public port listens on.")
    port: int = Field(default=8000, ge=1, le=65535)
    public_url: str | None = Field(default=None, description="URL learners open; derived when empty.")
    network: str = "dlworkshop"
    data_volume: str = "dlworkshop-hub-data"
    container_name: str = "dlworkshop-hub"
    image_archive: ConfigPath | None = Field(
        default=None,
        description="A `docker save` file of the hub image, copied to the host when image.source is archive.",
    )
    start_timeout: int = Field(
        default=600,
        ge=30,
        description="Seconds a learner's server may take once admitted (not while queued).",
    )
    start_capacity: Annotated[int, Field(ge=1)] | Literal["auto"] = Field(
        default="auto",
        description="Learner server starts run at once; the rest queue in order. auto: from the host's cores and memory.",
    )
    tls: TLS = TLS()

    @property
    def url(self) -> str:
        """What learners open (one rule: dlworkshop.contract.hub_url)."""
        return contract.hub_url(
            self.public_url, self.tls.domain, self.tls.mode != "none", self.bind, self.port, self.tls.port
        )

    @property
    def local_only(self) -> bool:
        """Whether the hub's port listens on this machine's loopback only."""
        return contract.is_loopback(self.bind)


class Prewarm(StrictModel):
    """Servers started ahead of workshop.start, so the 09:00 room finds them running."""

    minutes_before: int = Field(
        default=20, ge=1, le=24 * 60, description="The hub pre-warms this long before workshop.start."
    )
    seats: Annotated[int, Field(ge=0)] | Literal["auto"] = Field(
        default="auto",
        description="shared-code mode: ready servers handed out at first login (auto: the learners "
        "expected at once). accounts and github modes pre-warm the named learners instead.",
    )
    spares: int = Field(
        default=0,
        ge=0,
        description="shared-code mode: ready servers kept for first logins from pre-warm time until "
        "workshop.end (seats nobody has taken count), refilled after the rush; culled at workshop.end.",
    )
    refill_seconds: int = Field(
        default=30, ge=1, description="Seconds at least between two spare starts (one at a time)."
    )


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


def _count_or_auto(value: Any) -> Any:
    """One clear message, instead of one per member of `int | "auto"`."""
    if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
        return value
    raise ValueError(f"{value!r} is neither a count (0 or more) nor auto")


class KubernetesToleration(StrictModel):
    """A pod toleration, as Kubernetes spells it, for the taint on the GPU node pool."""

    key: str
    operator: Literal["Exists", "Equal"] = "Exists"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = "NoSchedule"


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
    placeholders: Annotated[int | Literal["auto"], BeforeValidator(_count_or_auto)] = Field(
        default="auto",
        description="Placeholder pods holding room for learners (auto: the learners expected at once).",
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
    count: Annotated[int | Literal["auto"], BeforeValidator(_count_or_auto)] = Field(
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


class Settings(StrictModel):
    workshop: WorkshopInfo = WorkshopInfo()
    learners: Learners = Learners(count=4)
    auth: Auth
    image: Image = Image()
    resources: Resources = Resources()
    culling: Culling = Culling()
    hub: Hub = Hub()
    prewarm: Prewarm = Prewarm()
    kubernetes: Kubernetes = Kubernetes()
    slurm: Slurm = Slurm()

    @model_validator(mode="after")
    def _the_backend_can_run_these_settings(self) -> Settings:
        """Checks that need two sections; each problem is reported at the key it names."""
        problems: list[tuple[tuple[str, ...], str]] = []
        if self.hub.backend != "slurm" and "slurm" in self.model_fields_set:
            problems.append((("slurm",), "only hub.backend slurm reads this section"))
        if self.hub.backend == "kubernetes":
            from dlworkshop.kubernetes.supported import unsupported_settings

            problems += unsupported_settings(self)
        elif self.hub.backend == "slurm":
            from dlworkshop.slurm.supported import unsupported_settings as unsupported_on_slurm

            if "kubernetes" in self.model_fields_set:
                problems.append((("kubernetes",), "only hub.backend kubernetes reads this section"))
            problems += unsupported_on_slurm(self)
        else:
            if "kubernetes" in self.model_fields_set:
                problems.append((("kubernetes",), "only hub.backend kubernetes reads this section"))
            if self.resources.gpu.policy == "mig" and not self.resources.gpu.mig_devices:
                problems.append(
                    (
                        ("resources", "gpu", "mig_devices"),
                        "policy mig needs the MIG device UUIDs (nvidia-smi -L lists them)",
                    )
                )
        if problems:
            raise ValidationError.from_exception_data(
                "Settings",
                [
                    InitErrorDetails(type=PydanticCustomError("value_error", message), loc=loc, input=None)
                    for loc, message in problems
                ],
            )
        return self

    @property
    def prewarm_seats(self) -> int:
        """Seats pre-warmed in shared-code mode (0 where learners are known by name)."""
        if self.auth.mode != "shared-code" or self.learners.names:
            return 0
        seats = self.prewarm.seats
        return self.learners.concurrent if seats == "auto" else seats

    @property
    def mounts_shared_folder(self) -> bool:
        """resources.shared_folder, else on where the backend can mount one (Docker)."""
        chosen = self.resources.shared_folder
        return chosen if chosen is not None else self.hub.backend == "docker"

    @model_validator(mode="after")
    def _spares_have_seats_and_a_window(self) -> Settings:
        """Spares are handed out like seats (shared-code mode) and kept between two known times."""
        if not self.prewarm.spares:
            return self
        problems = []
        if self.auth.mode != "shared-code" or self.learners.names:
            problems.append(
                "spares are handed out at a first login in shared-code mode (like seats); with "
                "accounts, github or learners.names the hub pre-warms every named learner: remove it"
            )
        if self.workshop.start is None or self.workshop.end is None:
            problems.append(
                "spares are kept from pre-warm time until the workshop ends: set workshop.start "
                "and workshop.end"
            )
        if problems:
            raise ValidationError.from_exception_data(
                "Settings",
                [
                    InitErrorDetails(
                        type=PydanticCustomError("value_error", message),
                        loc=("prewarm", "spares"),
                        input=None,
                    )
                    for message in problems
                ],
            )
        return self

    @model_validator(mode="after")
    def _prewarmed_servers_wait_less_than_the_culler(self) -> Settings:
        if self.workshop.start and self.prewarm.minutes_before * 60 >= self.culling.idle_timeout:
            raise ValueError(
                f"prewarm.minutes_before ({self.prewarm.minutes_before}) must be shorter than "
                f"culling.idle_timeout ({self.culling.idle_timeout} s), or the culler stops the "
                "pre-warmed servers before the learners arrive"
            )
        return self


# Why a named file may be missing, and how to make it.
_MAKE_FILE = {"auth.accounts_file": "; run `dlworkshop accounts generate N` and set auth.accounts_file"}


def named_files(settings: Settings) -> dict[str, Path]:
    """The files workshop.yaml names for the modes it uses, by key (relative paths taken from the
    file's folder): what the machine that installs or renders the hub must read."""
    tls, image = settings.hub.tls, settings.image
    candidates = {
        "auth.accounts_file": settings.auth.accounts_file if settings.auth.mode == "accounts" else None,
        "hub.tls.certificate": tls.certificate if tls.mode == "files" else None,
        "hub.tls.key": tls.key if tls.mode == "files" else None,
        "image.archive": image.archive if image.source == "archive" else None,
        "hub.image_archive": settings.hub.image_archive if image.source == "archive" else None,
    }
    return {key: path for key, path in candidates.items() if path is not None}


def missing_files(settings: Settings, keys: tuple[str, ...] | None = None) -> list[str]:
    """One problem line per named file (of `keys`, default all) that this machine lacks."""
    return [
        f"{key}: {path} does not exist on this machine{_MAKE_FILE.get(key, '')}"
        for key, path in named_files(settings).items()
        if (keys is None or key in keys) and not path.is_file()
    ]


# The embedded default behind `dlworkshop up` with no file: CPU image, shared-code login, 4 learners.
DEFAULT_SETTINGS_YAML = """\
workshop:
  name: Introduction to deep learning
learners:
  count: 4
auth:
  mode: shared-code
  access_code: {access_code}
resources:
  cpu: 0.5
  memory: 2G
"""


def _line_numbers(text: str) -> dict[tuple[str | int, ...], int]:
    """Map each key path in the YAML text to its 1-based line, to point problems at the file."""
    lines: dict[tuple[str | int, ...], int] = {}

    def walk(node: yaml.Node, path: tuple[str | int, ...]) -> None:
        lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                child = (*path, key.value)
                lines[child] = key.start_mark.line + 1
                walk(value, child)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                walk(item, (*path, index))

    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        return lines
    if root is not None:
        walk(root, ())
    return lines


def _describe(error: ErrorDetails, lines: dict[tuple[str | int, ...], int], source: str) -> str:
    loc = tuple(part for part in error["loc"] if not str(part).startswith("function-"))
    path = ".".join(str(part) for part in loc)
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key (check its spelling and indentation)"
    elif error["type"] == "missing":
        message = "required, but missing"
    line = next((lines[loc[:n]] for n in range(len(loc), -1, -1) if loc[:n] in lines), None)
    where = f"{source}:{line}: " if line else f"{source}: "
    return f"{where}{path}: {message}" if path else f"{where}{message}"


def parse_settings(text: str, source: str = DEFAULT_CONFIG_NAME, base_dir: Path | None = None) -> Settings:
    """Validate YAML text; raise ConfigError listing every problem with its path and line. Relative
    paths in it are taken relative to base_dir (the file's folder), when given."""
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source} is not valid YAML: {exc}", fix="fix the YAML syntax") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source} must be a mapping of sections (workshop, learners, auth...)")
    try:
        return Settings.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as exc:
        lines = _line_numbers(text)
        problems = [_describe(error, lines, source) for error in exc.errors()]
        raise ConfigError(
            f"{source} has {len(problems)} problem(s)",
            problems=problems,
            fix="correct the keys named above; `dlworkshop init` writes a commented example",
        ) from None


def find_config(path: Path | None = None) -> Path | None:
    """The file to read: an explicit path, then $DLWORKSHOP_CONFIG, then ./workshop.yaml."""
    if path is not None:
        if not path.is_file():
            raise ConfigError(f"{path} does not exist", fix="run `dlworkshop init` to write one")
        return path
    from_env = os.environ.get(CONFIG_ENV)
    if from_env:
        return find_config(Path(from_env))
    local = Path(DEFAULT_CONFIG_NAME)
    return local if local.is_file() else None


def load_settings(path: Path | None = None, *, default_access_code: str | None = None) -> Settings:
    """Load and validate workshop.yaml; with no file anywhere, the embedded default."""
    found = find_config(path)
    if found is None:
        code = default_access_code or os.environ.get("DLWORKSHOP_ACCESS_CODE") or "deep-learning"
        return parse_settings(DEFAULT_SETTINGS_YAML.format(access_code=code), source="<embedded default>")
    return parse_settings(
        found.read_text(encoding="utf-8"), source=str(found), base_dir=found.resolve().parent
    )
