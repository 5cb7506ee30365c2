"""Filters for the workshop playbook: thin shims over dlworkshop's own functions (the playbook runs
on the control node, where dlworkshop is installed), so the host's GPUs are parsed, and the hub's
settings completed, by the same code `dlworkshop up` uses."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from dlworkshop.gpus import GpuDevice, parse_nvidia_smi
from dlworkshop.hub_runtime import with_gpu_inventory


def gpu_inventory(query: str) -> list[dict[str, Any]]:
    """The output of `nvidia-smi` with dlworkshop.gpus.QUERY_ARGS, as plain data for facts."""
    return [asdict(device) for device in parse_nvidia_smi(query)]


def settings_with_gpus(settings: dict[str, Any], gpus: list[dict[str, Any]]) -> dict[str, Any]:
    """resources.gpu.devices `auto` filled from the host's GPUs (hub_runtime.with_gpu_inventory)."""
    return with_gpu_inventory(settings, [GpuDevice(**gpu) for gpu in gpus])


class FilterModule:
    def filters(self) -> dict[str, object]:
        return {
            "dlworkshop_gpu_inventory": gpu_inventory,
            "dlworkshop_settings_with_gpus": settings_with_gpus,
        }
