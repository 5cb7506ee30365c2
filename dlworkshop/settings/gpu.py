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
