"""The hub as `dlworkshop up` and the Ansible deploy both install it: the settings file it reads and
the container it runs in. One function for each, so the two ways to a hub cannot drift apart.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, SecretStr

from dlworkshop import contract
from dlworkshop.errors import WorkshopError
from dlworkshop.gpus import GpuDevice
from dlworkshop.settings import Settings


def require_docker_hub(settings: Settings, command: str) -> None:
    """`up` and `deploy` install the hub on Docker; a Kubernetes workshop's hub is the chart's."""
    if settings.hub.backend == "kubernetes":
        raise WorkshopError(
            f"dlworkshop {command} runs the hub on Docker, and this workshop runs on Kubernetes "
            "(hub.backend: kubernetes)",
            fix="render the Zero to JupyterHub chart's values with `dlworkshop render z2jh -c "
            "workshop.yaml --out values.yaml` and install them with helm (README: Kubernetes)",
        )


def _plain(value: Any) -> Any:
    """Settings as plain YAML-able data, secrets revealed (the hub needs them): only what
    workshop.yaml set, so the hub's defaults are the model's, read at the hub."""
    if isinstance(value, BaseModel):
        return {
            name: _plain(getattr(value, name))
            for name in type(value).model_fields
            if name in value.model_fields_set
        }
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def with_gpu_inventory(data: dict[str, Any], gpus: list[GpuDevice]) -> dict[str, Any]:
    """resources.gpu.devices `auto` filled from the host's GPUs (UUIDs and the smallest memory),
    so the hub in its container needs no nvidia-smi. Anything else is left as written."""
    gpu = dict(data.get("resources", {}).get("gpu", {}))
    if gpu.get("devices", "auto") != "auto" or not gpus or gpu.get("policy", "none") == "none":
        return data
    gpu["devices"] = [device.uuid for device in gpus]
    known_memory = [device.memory_mb for device in gpus if device.memory_mb]
    if gpu.get("memory_mb") is None and known_memory:
        gpu["memory_mb"] = min(known_memory)
    return {**data, "resources": {**data.get("resources", {}), "gpu": gpu}}


def hub_settings(settings: Settings, gpus: list[GpuDevice] | None = None) -> dict[str, Any]:
    """What the hub reads (as workshop.yaml in its container): the settings less what only the
    machine that installs the hub uses, with the host's GPUs filled in."""
    data = _plain(settings)
    data.get("hub", {}).pop("image_archive", None)
    # The hub finds the site's configuration at its own place (contract.HUB_EXTRA_CONFIG).
    data.get("hub", {}).pop("extra_config", None)
    return with_gpu_inventory(data, gpus or [])


def hub_settings_yaml(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def hub_container_spec(
    settings: Settings,
    settings_file: str,
    accounts_file: str | None = None,
    tls_files: tuple[str, str] | None = None,
    extra_config: str | None = None,
) -> dict[str, Any]:
    """The hub container, as keyword arguments of the Docker SDK's `containers.run` (the deploy
    turns the same dict into community.docker.docker_container options). With `tls_files`
    (certificate chain, key: `dlworkshop up` on a public address) the hub's proxy serves TLS on
    hub.tls.port; without, plain HTTP on hub.port (the deploy's TLS proxy fronts it). With
    `extra_config` (the site's jupyterhub_config.d folder on the host) the hub loads its files last."""
    hub = settings.hub
    volumes = {
        contract.DOCKER_SOCKET: {"bind": contract.DOCKER_SOCKET, "mode": "rw"},
        hub.data_volume: {"bind": str(contract.HUB_DATA), "mode": "rw"},
        settings_file: {"bind": str(contract.HUB_SETTINGS), "mode": "ro"},
    }
    if settings.mounts_shared_folder:
        # `dlworkshop share` copies into it through the hub; learners mount it read-only.
        volumes[contract.shared_volume_name(hub.container_name)] = {
            "bind": str(contract.HUB_SHARED),
            "mode": "rw",
        }
    if accounts_file is not None:
        volumes[accounts_file] = {"bind": str(contract.HUB_ACCOUNTS), "mode": "ro"}
    if tls_files is not None:
        volumes[tls_files[0]] = {"bind": str(contract.HUB_TLS_CERT), "mode": "ro"}
        volumes[tls_files[1]] = {"bind": str(contract.HUB_TLS_KEY), "mode": "ro"}
    if extra_config is not None:
        volumes[extra_config] = {"bind": str(contract.HUB_EXTRA_CONFIG), "mode": "ro"}
    # workshop.start without a UTC offset means the host's local time, in the hub as on the host.
    volumes[contract.LOCALTIME] = {"bind": contract.LOCALTIME, "mode": "ro"}
    volumes[contract.HOST_CGROUP] = {"bind": str(contract.HUB_HOST_CGROUP), "mode": "ro"}
    published = hub.tls.port if tls_files is not None else hub.port
    return {
        "image": hub.image,
        "name": hub.container_name,
        "network": hub.network,
        "ports": {f"{contract.HUB_PORT}/tcp": (hub.bind, published)},
        "volumes": volumes,
        "environment": {contract.CONFIG_ENV: str(contract.HUB_SETTINGS)},
        "labels": {contract.LABEL_HUB: hub.container_name},
        "restart_policy": {"Name": "unless-stopped"},
        "tmpfs": {str(contract.HUB_RUNTIME): "size=16m,mode=0755"},
        # A line per request (every failed login, every API call): capped like a learner's.
        "log_config": contract.docker_log_config(settings.resources.log_max),
    }
