"""The settings model turned into the playbook's variables, passed as extra vars: nothing about a
workshop is written twice (no group_vars). Pure functions, unit-tested."""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import BaseModel, SecretStr

from dlworkshop.deploy.archive import archive_image_id
from dlworkshop.errors import ConfigError
from dlworkshop.hub_service import CONTAINER_ACCOUNTS, hub_container_spec
from dlworkshop.settings import Settings

# Where the hub's files live on a deployed host (the same place `dlworkshop up` uses as root).
HOST_STATE = PurePosixPath("/var/lib/dlworkshop")
HOST_TLS = PurePosixPath("/etc/dlworkshop/tls")


def plain(value: Any) -> Any:
    """The settings as plain YAML-able data with secrets revealed (the hub on the host needs them):
    only what workshop.yaml set, so the hub reads the admin's file, defaults and all, as written."""
    if isinstance(value, BaseModel):
        return {
            name: plain(getattr(value, name))
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
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


def hub_side_settings(settings: Settings) -> dict[str, Any]:
    """What the hub container reads: the settings less what only the deploy uses."""
    data = plain(settings)
    data.get("hub", {}).pop("image_archive", None)
    return data


def check_deployable(settings: Settings, config_dir: Path | None = None) -> None:
    """What a deploy needs beyond a valid workshop.yaml, checked before any host is touched."""
    problems: list[str] = []
    tls = settings.hub.tls
    if tls.mode == "none":
        problems.append(
            "hub.tls.mode: a deploy puts TLS in front of the hub; use self-signed, files or letsencrypt"
        )
    elif not tls.domain:
        problems.append("hub.tls.domain: a deploy needs the name learners open (the certificate's name)")
    if settings.hub.bind not in ("127.0.0.1", "localhost"):
        problems.append(
            f"hub.bind: {settings.hub.bind} would expose the hub's plain HTTP beside the TLS proxy; "
            "a deployed hub listens on 127.0.0.1"
        )
    for field, path in (
        ("hub.tls.certificate", tls.certificate if tls.mode == "files" else None),
        ("hub.tls.key", tls.key if tls.mode == "files" else None),
        ("image.archive", settings.image.archive if settings.image.source == "archive" else None),
        ("hub.image_archive", settings.hub.image_archive if settings.image.source == "archive" else None),
        ("auth.accounts_file", settings.auth.accounts_file if settings.auth.mode == "accounts" else None),
    ):
        if path is not None and not resolve(path, config_dir).is_file():
            problems.append(f"{field}: {path} does not exist on this machine")
    if settings.image.source == "archive" and settings.hub.image_archive is None:
        problems.append(
            "hub.image_archive: image.source archive needs the hub image's `docker save` file too"
        )
    if settings.auth.mode == "accounts" and settings.auth.accounts_file is None:
        problems.append("auth.accounts_file: mode accounts needs the hashed accounts CSV")
    if problems:
        raise ConfigError(
            f"the settings cannot be deployed: {len(problems)} problem(s)",
            problems=problems,
            fix="correct workshop.yaml; nothing was changed on any host",
        )


def resolve(path: Path, config_dir: Path | None) -> Path:
    """Paths in workshop.yaml are relative to the file, as a reader expects."""
    return path if path.is_absolute() or config_dir is None else (config_dir / path)


def bridge_name(network: str) -> str:
    """The learner network's bridge interface: named, so firewall rules can name it (15 chars max)."""
    return "dlw-" + hashlib.sha256(network.encode()).hexdigest()[:8]


def hub_url(settings: Settings) -> str:
    """What learners open: the public URL, else the TLS name on 443."""
    if settings.hub.public_url:
        return settings.hub.public_url.rstrip("/")
    return f"https://{settings.hub.tls.domain}"


def docker_container_params(spec: dict[str, Any]) -> dict[str, Any]:
    """The SDK spec of hub_service.hub_container_spec as community.docker.docker_container options."""
    (container_port, (bind, port)) = next(iter(spec["ports"].items()))
    return {
        "name": spec["name"],
        "image": spec["image"],
        "networks": [{"name": spec["network"]}],
        "published_ports": [f"{bind}:{port}:{container_port.split('/')[0]}"],
        "volumes": [f"{source}:{mount['bind']}:{mount['mode']}" for source, mount in spec["volumes"].items()],
        "env": spec["environment"],
        "labels": spec["labels"],
        "restart_policy": spec["restart_policy"]["Name"],
    }


def playbook_vars(settings: Settings, config_dir: Path | None = None) -> dict[str, Any]:
    """Extra vars for ansible/site.yml, named after the role that reads them."""
    hub = settings.hub
    tls = settings.hub.tls
    hub_dir = HOST_STATE / hub.container_name
    accounts = str(hub_dir / "accounts.csv") if settings.auth.mode == "accounts" else None
    spec = hub_container_spec(settings, str(hub_dir / "workshop.yaml"), accounts)
    archives: dict[str, Path] = {}
    if settings.image.source == "archive":
        archives = {
            settings.image.reference: resolve(settings.image.archive, config_dir).resolve(),  # type: ignore[arg-type]
            hub.image: resolve(hub.image_archive, config_dir).resolve(),  # type: ignore[arg-type]
        }
    return {
        "workshop_images_source": "pull" if settings.image.source == "pull" else "archive",
        "workshop_images_wanted": [
            {
                "name": ref,
                "archive": str(archives[ref]) if ref in archives else None,
                # The exact image: a rebuild under the same tag is copied again.
                "id": archive_image_id(archives[ref], ref) if ref in archives else None,
            }
            for ref in (settings.image.reference, hub.image)
        ],
        "workshop_hub_settings": hub_side_settings(settings),
        "workshop_hub_dir": str(hub_dir),
        "workshop_hub_container": docker_container_params(spec),
        "workshop_hub_network": hub.network,
        "workshop_hub_volume": hub.data_volume,
        "workshop_hub_bridge": bridge_name(hub.network),
        "workshop_hub_accounts_source": (
            str(resolve(settings.auth.accounts_file, config_dir).resolve())  # type: ignore[arg-type]
            if accounts
            else ""
        ),
        "workshop_hub_accounts_path": accounts or "",
        "workshop_hub_gpu_policy": settings.resources.gpu.policy,
        "workshop_hub_url": hub_url(settings),
        "tls_proxy_mode": tls.mode,
        "tls_proxy_domain": tls.domain or "",
        "tls_proxy_email": tls.email or "",
        "tls_proxy_acme_directory": tls.acme_directory,
        "tls_proxy_certificate_source": str(resolve(tls.certificate, config_dir)) if tls.certificate else "",
        "tls_proxy_key_source": str(resolve(tls.key, config_dir)) if tls.key else "",
        "tls_proxy_upstream": f"{'127.0.0.1' if hub.bind == '0.0.0.0' else hub.bind}:{hub.port}",
        "workshop_firewall_bridge": bridge_name(hub.network),
    }


def verify_vars(settings: Settings) -> dict[str, Any]:
    """What the testinfra suite expects on a host; no secrets."""
    hub = settings.hub
    return {
        "learner_image": settings.image.reference,
        "hub_image": hub.image,
        "hub_container": hub.container_name,
        "hub_volume": hub.data_volume,
        "hub_network": hub.network,
        "hub_bridge": bridge_name(hub.network),
        "hub_port": hub.port,
        "tls_mode": hub.tls.mode,
        "tls_domain": hub.tls.domain,
        "tls_ca_file": str(HOST_TLS / "self-signed" / "fullchain.pem")
        if hub.tls.mode == "self-signed"
        else None,
        "secrets_dir": "/srv/jupyterhub/data",
        "accounts_in_container": CONTAINER_ACCOUNTS if settings.auth.mode == "accounts" else None,
    }
