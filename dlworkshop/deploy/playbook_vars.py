"""The settings model turned into the playbook's variables, passed as extra vars: nothing about a
workshop is written twice (no group_vars). Pure functions, unit-tested."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dlworkshop import contract
from dlworkshop.deploy.archive import archive_image_id
from dlworkshop.docker_host import work_volumes
from dlworkshop.docker_host.firewall import learner_rules
from dlworkshop.docker_host.hub_runtime import hub_container_spec, hub_settings
from dlworkshop.errors import ConfigError
from dlworkshop.gpus import QUERY_ARGS
from dlworkshop.settings import Settings, missing_files


def contract_vars() -> dict[str, Any]:
    """The names the roles share with the hub and the image (dlworkshop/contract.py), as one extra
    var: the roles' defaults read them from `dlworkshop_contract`, so none is written twice."""
    return {
        "host_state": str(contract.HOST_STATE),
        "host_tls": str(contract.HOST_TLS),
        "host_gpu_inventory": str(contract.HOST_GPU_INVENTORY),
        "metadata_address": contract.METADATA_ADDRESS,
        "label_hub": contract.LABEL_HUB,
        "docker_live_restore": contract.DOCKER_LIVE_RESTORE,
        "nvidia_smi_query_args": list(QUERY_ARGS),
        "config_env": contract.CONFIG_ENV,
        "hub_home_env": contract.HUB_HOME_ENV,
        "hub_runtime_name": contract.HUB_RUNTIME_NAME,
        "cluster_hub_prefix": str(contract.CLUSTER_HUB_PREFIX),
        "hub_extra_config_name": contract.HUB_EXTRA_CONFIG.name,
    }


def site_config_vars(settings: Settings) -> list[dict[str, str]]:
    """The site's configuration files (hub.extra_config) the hub roles copy, in the order the hub
    loads them; none without the setting."""
    folder = settings.hub.extra_config
    if folder is None:
        return []
    return [{"name": path.name, "src": str(path.resolve())} for path in contract.site_config_files(folder)]


def check_deployable(settings: Settings) -> None:
    """What a deploy needs beyond a valid workshop.yaml, checked before any host is touched."""
    problems: list[str] = []
    tls = settings.hub.tls
    if tls.mode == "none":
        problems.append(
            "hub.tls.mode: a deploy puts TLS in front of the hub; use self-signed, files or letsencrypt"
        )
    elif not tls.domain:
        problems.append("hub.tls.domain: a deploy needs the name learners open (the certificate's name)")
    if tls.port != 443:
        problems.append("hub.tls.port: a deploy serves TLS on 443 (its nginx); remove the key")
    if settings.hub.bind not in ("127.0.0.1", "localhost"):
        problems.append(
            f"hub.bind: {settings.hub.bind} would expose the hub's plain HTTP beside the TLS proxy; "
            "a deployed hub listens on 127.0.0.1"
        )
    problems += missing_files(settings)
    if settings.image.source == "archive" and settings.hub.image_archive is None:
        problems.append(
            "hub.image_archive: image.source archive needs the hub image's `docker save` file too"
        )
    if problems:
        raise ConfigError(
            f"the settings cannot be deployed: {len(problems)} problem(s)",
            problems=problems,
            fix="correct workshop.yaml; nothing was changed on any host",
        )


def docker_container_params(spec: dict[str, Any]) -> dict[str, Any]:
    """The SDK spec of hub_runtime.hub_container_spec as community.docker.docker_container options."""
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
        "tmpfs": [f"{path}:{options}" for path, options in spec["tmpfs"].items()],
        "log_driver": spec["log_config"]["Type"],
        "log_options": spec["log_config"]["Config"],
    }


def tls_proxy_vars(settings: Settings) -> dict[str, Any]:
    """The tls_proxy role's variables: the same TLS endpoint in front of a hub on a VM or a login node."""
    hub, tls = settings.hub, settings.hub.tls
    return {
        "tls_proxy_mode": tls.mode,
        "tls_proxy_domain": tls.domain or "",
        "tls_proxy_email": tls.email or "",
        "tls_proxy_acme_directory": tls.acme_directory,
        "tls_proxy_certificate_source": str(tls.certificate) if tls.certificate else "",
        "tls_proxy_key_source": str(tls.key) if tls.key else "",
        "tls_proxy_upstream": f"{hub.bind}:{hub.port}",
    }


def playbook_vars(settings: Settings) -> dict[str, Any]:
    """Extra vars for ansible/site.yml, named after the role that reads them."""
    hub = settings.hub
    hub_dir = contract.HOST_STATE / hub.container_name
    accounts = str(hub_dir / "accounts.csv") if settings.auth.mode == "accounts" else None
    extra_config_dir = str(hub_dir / contract.HUB_EXTRA_CONFIG.name)
    spec = hub_container_spec(
        settings,
        str(hub_dir / contract.CONFIG_NAME),
        accounts,
        extra_config=extra_config_dir if hub.extra_config else None,
    )
    archives: dict[str, Path] = {}
    if settings.image.source == "archive":
        assert settings.image.archive and hub.image_archive  # check_deployable requires both
        archives = {
            settings.image.reference: settings.image.archive.resolve(),
            hub.image: hub.image_archive.resolve(),
        }
    engine_logs = contract.log_options(settings.resources.log_max)
    return {
        "dlworkshop_contract": contract_vars(),
        # The engine's default for any other container: the same cap as the hub's and learners'.
        "docker_engine_log_max_size": engine_logs["max-size"],
        "docker_engine_log_max_files": int(engine_logs["max-file"]),
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
        # Filled with the host's GPUs on the host (the dlworkshop_settings_with_gpus filter).
        "workshop_hub_settings": hub_settings(settings),
        "workshop_hub_dir": str(hub_dir),
        "workshop_hub_container": docker_container_params(spec),
        "workshop_hub_network": hub.network,
        "workshop_hub_volume": hub.data_volume,
        "workshop_hub_bridge": contract.bridge_name(hub.network),
        "workshop_hub_accounts_source": str(settings.auth.accounts_file.resolve())
        if accounts and settings.auth.accounts_file
        else "",
        "workshop_hub_accounts_path": accounts or "",
        "workshop_hub_gpu_policy": settings.resources.gpu.policy,
        "workshop_hub_extra_config_files": site_config_vars(settings),
        "workshop_hub_extra_config_dir": extra_config_dir,
        "workshop_hub_url": hub.url,
        **tls_proxy_vars(settings),
        "workshop_firewall_bridge": contract.bridge_name(hub.network),
        # The same rules `dlworkshop up` installs (dlworkshop/docker_host/firewall.py).
        "workshop_firewall_rules": [
            rule.as_vars() for rule in learner_rules(contract.bridge_name(hub.network))
        ],
        **work_volume_vars(settings),
    }


def work_volume_vars(settings: Settings) -> dict[str, Any]:
    """The size-limited work folders (dlworkshop/docker_host/work_volumes.py): the same script and slots as `up`."""
    hub = settings.hub.container_name
    disk = settings.resources.disk
    return {
        "workshop_hub_work_quota": disk is not None,
        "workshop_hub_work_script": str(work_volumes.SCRIPT),
        "workshop_hub_work_images": str(contract.work_images_dir(hub, contract.HOST_STATE)),
        "workshop_hub_work_devices": str(contract.HOST_WORK_DEVICES / hub),
        "workshop_hub_work_size": disk or 0,
        "workshop_hub_work_owner": contract.learner.UID,
        "workshop_hub_work_slots": work_volumes.slot_names(settings) if disk is not None else [],
        # Docker would create a missing bind source as an empty folder: the role checks them.
        "workshop_hub_extra_mount_sources": [m.source for m in settings.resources.extra_mounts],
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
        "hub_bridge": contract.bridge_name(hub.network),
        "hub_port": hub.port,
        "tls_mode": hub.tls.mode,
        "tls_domain": hub.tls.domain,
        "tls_ca_file": str(contract.HOST_TLS / "self-signed" / "fullchain.pem")
        if hub.tls.mode == "self-signed"
        else None,
        "secrets_dir": str(contract.HUB_DATA),
        "accounts_in_container": str(contract.HUB_ACCOUNTS) if settings.auth.mode == "accounts" else None,
        "log_options": contract.log_options(settings.resources.log_max),
        "work_quota": settings.resources.disk is not None,
        "work_slots": work_volumes.slot_count(settings) if settings.resources.disk is not None else 0,
    }


def cluster_playbook_vars(
    settings: Settings, env_archive: Path, env_image_id: str, hub_archive: Path, hub_image_id: str
) -> dict[str, Any]:
    """Extra vars for the cluster plays of ansible/site.yml (hub.backend slurm)."""
    from dataclasses import asdict

    from dlworkshop.slurm.environment import HUB_MARKER, MARKER
    from dlworkshop.slurm.jobs import account_uids, gres
    from dlworkshop.slurm.limits import ASSOCIATION_FORMAT, learner_limits

    hub, slurm = settings.hub, settings.slurm
    accounts = account_uids(settings)
    limits = learner_limits(settings)
    return {
        "dlworkshop_contract": contract_vars(),
        "workshop_accounts_list": [{"name": name, "uid": uid} for name, uid in accounts.items()],
        "workshop_accounts_group": slurm.accounts.group,
        "workshop_accounts_group_gid": slurm.accounts.group_gid,
        "workshop_accounts_home_root": slurm.accounts.home_root,
        "workshop_learner_env_prefix": slurm.env_prefix,
        "workshop_learner_env_archive": str(env_archive),
        "workshop_learner_env_image": settings.image.reference,
        "workshop_learner_env_image_id": env_image_id,
        "workshop_learner_env_marker": MARKER,
        "workshop_cluster_hub_user": slurm.hub_user,
        "workshop_cluster_hub_home": str(contract.cluster_hub_home(slurm.hub_user)),
        "workshop_cluster_hub_prefix": str(contract.CLUSTER_HUB_PREFIX),
        "workshop_cluster_hub_archive": str(hub_archive),
        "workshop_cluster_hub_image_id": hub_image_id,
        "workshop_cluster_hub_marker": HUB_MARKER,
        "workshop_cluster_hub_settings": hub_settings(settings),
        "workshop_cluster_hub_accounts_source": str(settings.auth.accounts_file.resolve())
        if settings.auth.mode == "accounts" and settings.auth.accounts_file
        else "",
        "workshop_cluster_hub_extra_config_files": site_config_vars(settings),
        "workshop_cluster_hub_extra_config_dir": str(
            contract.cluster_hub_home(slurm.hub_user) / contract.HUB_EXTRA_CONFIG.name
        ),
        "workshop_cluster_hub_learners": list(accounts),
        "workshop_cluster_hub_learner_group": slurm.accounts.group,
        "workshop_cluster_hub_slurm_account": slurm.account or "",
        "workshop_cluster_hub_partition": slurm.partition or "",
        "workshop_cluster_hub_learner_limits": asdict(limits),
        "workshop_cluster_hub_learner_limits_set": limits.sacctmgr_set(),
        "workshop_cluster_hub_association_format": ASSOCIATION_FORMAT,
        "workshop_cluster_hub_log_max": settings.resources.log_max,
        "workshop_cluster_hub_gres": gres(settings) or "",
        "workshop_cluster_hub_bind": hub.bind,
        "workshop_cluster_hub_port": hub.port,
        **tls_proxy_vars(settings),
    }


def cluster_verify_vars(settings: Settings) -> dict[str, Any]:
    """What the cluster checks expect on the login and compute nodes; no secrets."""
    from dataclasses import asdict

    from dlworkshop.slurm.environment import HUB_MARKER, MARKER
    from dlworkshop.slurm.jobs import account_uids, gres
    from dlworkshop.slurm.limits import learner_limits

    slurm, tls = settings.slurm, settings.hub.tls
    return {
        "slurm_account": slurm.account,
        "hub_bind": settings.hub.bind,
        "hub_port": settings.hub.port,
        "learner_limits": asdict(learner_limits(settings)),
        "log_max": settings.resources.log_max,
        "accounts": account_uids(settings),
        "home_root": slurm.accounts.home_root,
        "partition": slurm.partition,
        "gres": gres(settings),
        "env_marker": f"{slurm.env_prefix}/{MARKER}",
        "hub_marker": f"{contract.CLUSTER_HUB_PREFIX}/{HUB_MARKER}",
        "hub_user": slurm.hub_user,
        "hub_home": str(contract.cluster_hub_home(slurm.hub_user)),
        "learner_group": slurm.accounts.group,
        "tls_mode": tls.mode,
        "tls_domain": tls.domain,
        "tls_ca_file": str(contract.HOST_TLS / "self-signed" / "fullchain.pem")
        if tls.mode == "self-signed"
        else None,
    }
