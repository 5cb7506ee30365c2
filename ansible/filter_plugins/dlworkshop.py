"""Filters for the workshop playbook; pure functions, unit-tested in tests/unit/test_deploy_filters.py."""

from __future__ import annotations


def gpu_inventory(query: str) -> list[dict[str, object]]:
    """Parse `nvidia-smi --query-gpu=index,uuid,name,memory.total --format=csv,noheader,nounits`."""
    gpus = []
    for line in (query or "").splitlines():
        fields = [field.strip() for field in line.split(",")]
        if len(fields) != 4 or not fields[0].isdigit():
            continue
        index, uuid, name, memory = fields
        gpus.append(
            {
                "index": int(index),
                "uuid": uuid,
                "name": name,
                "memory_mb": int(float(memory)) if memory.replace(".", "", 1).isdigit() else None,
            }
        )
    return gpus


def settings_with_gpus(settings: dict, gpus: list[dict[str, object]]) -> dict:
    """resources.gpu.devices `auto`: the host's GPU UUIDs and memory, so the hub needs no nvidia-smi."""
    gpu = dict(settings.get("resources", {}).get("gpu", {}))
    if gpu.get("devices", "auto") != "auto" or not gpus or gpu.get("policy", "none") == "none":
        return settings
    gpu["devices"] = [str(item["uuid"]) for item in gpus]
    if gpu.get("memory_mb") is None and gpus[0].get("memory_mb"):
        gpu["memory_mb"] = min(int(item["memory_mb"]) for item in gpus if item.get("memory_mb"))
    resources = {**settings.get("resources", {}), "gpu": gpu}
    return {**settings, "resources": resources}


class FilterModule:
    def filters(self) -> dict[str, object]:
        return {
            "dlworkshop_gpu_inventory": gpu_inventory,
            "dlworkshop_settings_with_gpus": settings_with_gpus,
        }
