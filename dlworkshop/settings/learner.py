"""What each learner gets: the image, and the resources of their server (CPU, memory, disk, mounts,
environment, GPU)."""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, field_validator, model_validator

from dlworkshop import contract
from dlworkshop.settings.base import AbsolutePath, ConfigPath, StrictModel
from dlworkshop.settings.gpu import GPU
from dlworkshop.settings.units import ByteSize, format_bytes, parse_bytes


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
