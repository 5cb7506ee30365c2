"""Filters for the workshop playbook: thin shims over dlworkshop's own functions (the playbook runs
on the control node, where dlworkshop is installed), so the host's GPUs are parsed, the hub's
settings completed, and the free work-folder slots offered, by the same code `dlworkshop up` uses."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from dlworkshop.docker_host.hub_runtime import with_gpu_inventory
from dlworkshop.docker_host.work_volumes import free_slot_volume, slots_to_register
from dlworkshop.gpus import GpuDevice, parse_nvidia_smi
from dlworkshop.slurm.limits import LearnerLimits, association_changes


def gpu_inventory(query: str) -> list[dict[str, Any]]:
    """The output of `nvidia-smi` with dlworkshop.gpus.QUERY_ARGS, as plain data for facts."""
    return [asdict(device) for device in parse_nvidia_smi(query)]


def settings_with_gpus(settings: dict[str, Any], gpus: list[dict[str, Any]]) -> dict[str, Any]:
    """resources.gpu.devices `auto` filled from the host's GPUs (hub_runtime.with_gpu_inventory)."""
    return with_gpu_inventory(settings, [GpuDevice(**gpu) for gpu in gpus])


def free_slot_volumes(volumes: list[dict[str, Any]], hub: str, slots: list[str]) -> list[dict[str, Any]]:
    """The volumes offering each slot that has none yet (neither free nor claimed), from
    docker_host_info's verbose volume list (work_volumes.slots_to_register)."""
    return [free_slot_volume(hub, slot) for slot in slots_to_register(volumes, hub, slots)]


def learner_association_changes(
    sacctmgr: str, learners: list[str], limits: dict[str, Any]
) -> dict[str, list[str]]:
    """The learners whose association the deploy adds or sets limits on (limits.association_changes)."""
    return association_changes(sacctmgr, learners, LearnerLimits(**limits))


class FilterModule:
    def filters(self) -> dict[str, object]:
        return {
            "dlworkshop_gpu_inventory": gpu_inventory,
            "dlworkshop_settings_with_gpus": settings_with_gpus,
            "dlworkshop_free_slot_volumes": free_slot_volumes,
            "dlworkshop_learner_association_changes": learner_association_changes,
        }
