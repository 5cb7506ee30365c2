"""The Zero to JupyterHub chart's values for a workshop: `dlworkshop render z2jh`.

Built from the one settings model through `mapping`, so the chart configures KubeSpawner with
the same values the hub's Kubernetes backend derives. The hub itself runs this project's hub
image and reads the same workshop.yaml (mounted from the chart's Secret) through
`hub.extraConfig`, the way jupyterhub_config.py does on Docker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dlworkshop import contract
from dlworkshop.errors import ConfigError
from dlworkshop.kubernetes import mapping
from dlworkshop.settings import KubernetesRequests, Settings, missing_files

# Where the hub pod finds workshop.yaml (a file of the chart's hub Secret, hub.extraFiles).
HUB_CONFIG_PATH = "/usr/local/etc/dlworkshop/workshop.yaml"
# The hashed accounts the AccountsAuthenticator reads.
HUB_ACCOUNTS_PATH = str(contract.HUB_ACCOUNTS)
SECRET_FILE_MODE = 0o440
# The volume the chart mounts hub.existingSecret as (templates/hub/deployment.yaml).
EXISTING_SECRET_VOLUME = "existing-secret"

# Our hub.extraConfig entry's key. The chart runs the entries in key order: "00-" puts ours before
# an operator's own (helm -f ours.yaml -f theirs.yaml keeps both), so theirs see ours and win.
EXTRA_CONFIG_KEY = "00-dlworkshop"
# Run by the chart's jupyterhub_config.py after its own settings (hub.extraConfig), with `c` in scope.
HUB_EXTRA_CONFIG = """\
# dlworkshop: the workshop's hub configuration from workshop.yaml, through the same entry point as
# the Docker hub's jupyterhub_config.py (authenticators, admission queue, pre-warm, culler).
import os
from pathlib import Path

from dlworkshop import contract
from dlworkshop.settings import load_settings
from hub.config import configure

settings_file = Path(os.environ[contract.CONFIG_ENV])
configure(c, load_settings(settings_file), settings_file=settings_file)
"""


@dataclass(frozen=True)
class HubFiles:
    """What the hub pod reads beside its image: the settings, and the files workshop.yaml names."""

    workshop_yaml: str
    accounts_csv: str | None = None
    tls_certificate: str | None = None
    tls_key: str | None = None


@dataclass
class Rendering:
    values: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


def hub_settings_yaml(settings: Settings) -> str:
    """workshop.yaml as the hub reads it: what the admin set, secrets included."""
    from dlworkshop.docker_host.hub_runtime import hub_settings

    return yaml.safe_dump(hub_settings(settings), sort_keys=False)


def read_hub_files(settings: Settings) -> HubFiles:
    """The files workshop.yaml names (relative to it), read here: the cluster cannot see this
    machine's disk."""
    problems = missing_files(settings, ("auth.accounts_file", "hub.tls.certificate", "hub.tls.key"))

    def read(path: Path | None) -> str | None:
        return path.read_text(encoding="utf-8") if path is not None and path.is_file() else None

    tls = settings.hub.tls
    files = HubFiles(
        workshop_yaml=hub_settings_yaml(settings),
        accounts_csv=read(settings.auth.accounts_file) if settings.auth.mode == "accounts" else None,
        tls_certificate=read(tls.certificate) if tls.mode == "files" else None,
        tls_key=read(tls.key) if tls.mode == "files" else None,
    )
    if problems:
        raise ConfigError(
            f"the workshop cannot be rendered for Kubernetes: {len(problems)} problem(s)",
            problems=problems,
            fix="correct workshop.yaml; `dlworkshop accounts generate N` writes the accounts CSV",
        )
    return files


def secret_files(files: HubFiles) -> dict[str, tuple[str, str]]:
    """The hub's secret files: key in a Secret -> (where the hub reads it, its text)."""
    found = {"workshop.yaml": (HUB_CONFIG_PATH, files.workshop_yaml)}
    if files.accounts_csv is not None:
        found["accounts.csv"] = (HUB_ACCOUNTS_PATH, files.accounts_csv)
    return found


def hub_secret_values(settings: Settings, files: HubFiles) -> dict[str, Any]:
    """The hub's secret files inline (the chart's own Secret, hub.extraFiles), or mounted from the
    operator's Secret (hub.existingSecret, which the chart mounts as the volume existing-secret)."""
    existing = settings.kubernetes.existing_secret
    if existing is None:
        return {
            "extraFiles": {
                key.replace(".", "-"): {"mountPath": path, "stringData": text, "mode": SECRET_FILE_MODE}
                for key, (path, text) in secret_files(files).items()
            }
        }
    return {
        "existingSecret": existing,
        "extraVolumeMounts": [
            {"name": EXISTING_SECRET_VOLUME, "mountPath": path, "subPath": key, "readOnly": True}
            for key, (path, _) in secret_files(files).items()
        ],
    }


def existing_secret_manifest(settings: Settings, files: HubFiles) -> dict[str, Any]:
    """The Secret kubernetes.existing_secret names, for `kubectl apply -f` (it holds the secrets)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": settings.kubernetes.existing_secret},
        "type": "Opaque",
        "stringData": {key: text for key, (_, text) in secret_files(files).items()},
    }


def requests(amounts: KubernetesRequests) -> dict[str, Any]:
    return {"requests": {"cpu": amounts.cpu, "memory": amounts.memory}}


def hub_values(settings: Settings, files: HubFiles) -> dict[str, Any]:
    name, tag = mapping.split_image(settings.hub.image)
    kubernetes = settings.kubernetes
    database: dict[str, Any] = {}
    if kubernetes.hub_storage_class is not None:
        database = {"db": {"pvc": {"storageClassName": kubernetes.hub_storage_class}}}
    return {
        "image": {"name": name, "tag": tag, "pullPolicy": kubernetes.image_pull_policy},
        "resources": requests(kubernetes.hub_requests),
        **database,
        "extraEnv": {contract.CONFIG_ENV: HUB_CONFIG_PATH},
        **hub_secret_values(settings, files),
        "extraConfig": {EXTRA_CONFIG_KEY: HUB_EXTRA_CONFIG},
        # The chart makes the pre-warm service's API token (kept in its hub Secret across upgrades);
        # hub.configure gives it to the service it defines (hub/backends/kubernetes.py).
        "services": {contract.PREWARM_SERVICE: {}},
        # KubeSpawner options the chart has no key for; the chart loads hub.config as-is.
        "config": {"KubeSpawner": {"container_security_context": mapping.container_security_context()}},
    }


def https_values(settings: Settings, files: HubFiles) -> dict[str, Any]:
    """The proxy's own TLS: Let's Encrypt, the operator's TLS Secret, or the key files inline. Off
    where an Ingress terminates TLS (ingress_values) and where no domain is served."""
    tls = settings.hub.tls
    kubernetes = settings.kubernetes
    if kubernetes.ingress is not None or (tls.mode == "none" and kubernetes.tls_secret is None):
        return {"enabled": False}
    https: dict[str, Any] = {"enabled": True, "hosts": [tls.domain] if tls.domain else []}
    if kubernetes.tls_secret is not None:
        https["type"] = "secret"
        https["secret"] = {"name": kubernetes.tls_secret, "crt": "tls.crt", "key": "tls.key"}
    elif tls.mode == "letsencrypt":
        https["type"] = "letsencrypt"
        https["letsencrypt"] = {"contactEmail": tls.email, "acmeServer": tls.acme_directory}
    else:
        https["type"] = "manual"
        https["manual"] = {"cert": files.tls_certificate, "key": files.tls_key}
    return https


def ingress_values(settings: Settings) -> dict[str, Any]:
    ingress = settings.kubernetes.ingress
    if ingress is None:
        return {}
    domain = settings.hub.tls.domain
    values: dict[str, Any] = {
        "enabled": True,
        "ingressClassName": ingress.class_name,
        "hosts": [domain],
        "tls": [{"hosts": [domain], "secretName": ingress.tls_secret}],
    }
    if ingress.annotations:
        values["annotations"] = dict(ingress.annotations)
    return {"ingress": values}


def proxy_values(settings: Settings, files: HubFiles) -> dict[str, Any]:
    pod_requests = requests(settings.kubernetes.proxy_requests)
    proxy: dict[str, Any] = {
        "https": https_values(settings, files),
        "chp": {"resources": pod_requests},
        # Let's Encrypt's certificates are fetched and served by the chart's Traefik pod.
        "traefik": {"resources": pod_requests},
    }
    if settings.kubernetes.ingress is not None:
        proxy["service"] = {"type": "ClusterIP"}  # reached through the Ingress only
    return proxy


def singleuser_values(settings: Settings) -> dict[str, Any]:
    traits = mapping.kubespawner_traits(settings)
    name, tag = mapping.split_image(traits["image"])
    storage: dict[str, Any] = {
        "type": "dynamic",
        "capacity": traits["storage_capacity"],
        # The work folder only, as on Docker: the rest of the home comes from the image.
        "homeMountPath": mapping.WORK_FOLDER,
    }
    if "storage_class" in traits:
        storage["dynamic"] = {"storageClass": traits["storage_class"]}
    values: dict[str, Any] = {
        "image": {"name": name, "tag": tag, "pullPolicy": traits["image_pull_policy"]},
        "cpu": {"limit": traits["cpu_limit"], "guarantee": traits["cpu_guarantee"]},
        "memory": {"limit": traits["mem_limit"], "guarantee": traits["mem_guarantee"]},
        "uid": traits["uid"],
        "fsGid": traits["fs_gid"],
        "allowPrivilegeEscalation": traits["allow_privilege_escalation"],
        "startTimeout": traits["start_timeout"],
        "defaultUrl": traits["default_url"],
        "storage": storage,
        # Cloud metadata (credentials of the node) is out of reach: the egress policy, where the
        # network plugin enforces it, and the privileged iptables init container unless turned off.
        "networkPolicy": {"enabled": True, "egressAllowRules": {"cloudMetadataServer": False}},
        "cloudMetadata": {
            "blockWithIptables": settings.kubernetes.metadata_iptables,
            "ip": mapping.CLOUD_METADATA_IP,
        },
        "profileList": traits["profile_list"],
    }
    # On singleuser, not in the profile: placeholders and image pullers take them from here too.
    if "node_selector" in traits:
        values["nodeSelector"] = traits["node_selector"]
    if "tolerations" in traits:
        values["extraTolerations"] = traits["tolerations"]
    return values


def scheduling_values(settings: Settings) -> dict[str, Any]:
    replicas = mapping.placeholder_count(settings)
    return {
        # Placeholders only give way to learners when their pods have the lower priority.
        "podPriority": {"enabled": replicas > 0},
        "userPlaceholder": {
            "enabled": replicas > 0,
            "replicas": replicas,
            "resources": mapping.placeholder_resources(settings),
        },
    }


def culling_values() -> dict[str, Any]:
    """The chart's culler off: the hub's own (hub.config.culler_service, from `culling`) culls, as
    on every engine. hub.configure keeps the services the chart lists before hub.extraConfig
    runs (an operator's hub.services), so a chart culler would be a second one."""
    return {"enabled": False}


def z2jh_values(settings: Settings, files: HubFiles) -> dict[str, Any]:
    """The chart's values: only keys the workshop decides; the chart's defaults do the rest."""
    pull_secrets = settings.kubernetes.image_pull_secrets
    return {
        # Every pod of the chart, learners' included (the chart hands them to KubeSpawner).
        **({"imagePullSecrets": list(pull_secrets)} if pull_secrets else {}),
        "hub": hub_values(settings, files),
        "proxy": proxy_values(settings, files),
        **ingress_values(settings),
        "singleuser": singleuser_values(settings),
        "scheduling": scheduling_values(settings),
        # The learner image on every node before the room arrives (hook: before helm finishes).
        "prePuller": {"hook": {"enabled": True}, "continuous": {"enabled": True}},
        "cull": culling_values(),
    }


def render_warnings(settings: Settings) -> list[str]:
    warnings = []
    if settings.image.tag == "latest" and settings.kubernetes.image_pull_policy == "IfNotPresent":
        warnings.append(
            "image.tag latest with pull policy IfNotPresent: a node keeps the first `latest` it pulled; "
            "tag each build (image.tag) so every node runs the same image"
        )
    if settings.image.source == "build":
        warnings.append(
            f"push {settings.image.reference} and {settings.hub.image} to a registry the cluster pulls from"
        )
    return warnings


def render_z2jh(settings: Settings) -> Rendering:
    if settings.hub.backend != "kubernetes":
        raise ConfigError(
            f"hub.backend is {settings.hub.backend}; the Z2JH values are for a workshop run on Kubernetes",
            problems=["hub.backend: set it to kubernetes (the hub in the cluster reads it too)"],
            fix="set hub.backend: kubernetes in workshop.yaml",
        )
    files = read_hub_files(settings)
    return Rendering(values=z2jh_values(settings, files), warnings=render_warnings(settings))


class _ValuesDumper(yaml.SafeDumper):
    """Multi-line strings (the hub's config code, workshop.yaml) as readable `|` blocks."""


def _represent_text(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text and not any(line != line.rstrip() for line in text.splitlines()) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_ValuesDumper.add_representer(str, _represent_text)


def dump_values(values: dict[str, Any], header: str) -> str:
    comment = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    return comment + yaml.dump(values, Dumper=_ValuesDumper, sort_keys=False, allow_unicode=True, width=110)
