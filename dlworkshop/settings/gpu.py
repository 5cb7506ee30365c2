"""The GPU policy of workshop.yaml (resources.gpu): none, whole GPUs, a share of one, or MIG slices."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, model_validator

from dlworkshop.settings.base import StrictModel
from dlworkshop.settings.units import parse_share


class GPU(StrictModel):
    policy: Literal["none", "whole", "shared", "mig"] = "none"
    per_learner: Annotated[float, BeforeValidator(parse_share)] = Field(
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
        if self.policy == "whole" and not float(self.per_learner).is_integer():
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

    # The GPU policy's arithmetic, in one place: capacity, the Docker allocator, the Slurm job request
    # and the Kubernetes mapping all ask these.

    @property
    def gpus_per_learner(self) -> int:
        """Devices one learner holds: N whole GPUs, else one (a share of one GPU, or one MIG slice)."""
        return int(self.per_learner) if self.policy == "whole" else 1

    @property
    def learners_per_gpu(self) -> int:
        """Learners one device carries: n for a GPU shared 1/n, else one."""
        return round(1 / self.per_learner) if self.policy == "shared" else 1

    def places(self, devices: int) -> int | None:
        """Learners `devices` carry at once (GPUs, or MIG slices under mig); None: no GPU policy."""
        if self.policy == "none":
            return None
        return devices // self.gpus_per_learner * self.learners_per_gpu

    def shares_per_learner(self, shares_per_gpu: int | None) -> int:
        """A shared GPU cut into `shares_per_gpu` equal shares (Slurm shards; default one per
        learner): how many each learner gets."""
        return (shares_per_gpu or self.learners_per_gpu) // self.learners_per_gpu

    def learner_memory_mb(self, gpu_memory_mb: int | None) -> int | None:
        """The learner's GPU memory cap (the TensorFlow hook applies it): memory_cap_mb, else a
        shared GPU's share of `gpu_memory_mb` (one GPU's memory, where known)."""
        if self.memory_cap_mb is not None:
            return self.memory_cap_mb
        if self.policy == "shared" and gpu_memory_mb:
            return gpu_memory_mb // self.learners_per_gpu
        return None
