"""`dlworkshop deploy` and `verify` for hub.backend slurm: the hub on the cluster's login node, the
learners' accounts on every node, the learner environment on shared storage. What the playbook
copies is made here first, from the built images (kept between deploys while an image is the same):
the learner environment (`dlworkshop env pack`) and the hub (its venv, code and proxy).
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from dlworkshop import contract
from dlworkshop.deploy.inventory import load_inventory
from dlworkshop.errors import WorkshopError
from dlworkshop.settings import Settings

LOGIN_GROUP = "workshop_login"
COMPUTE_GROUP = "workshop_compute"


def cluster_hosts(inventory: Path, limit: str | None = None) -> list[str]:
    """The inventory's login node (exactly one) and compute nodes, checked before any host is touched."""
    logins, _ = load_inventory(inventory, limit, group=LOGIN_GROUP)
    if len(logins) != 1:
        raise WorkshopError(
            f"inventory {inventory} names {len(logins)} hosts in `{LOGIN_GROUP}`; the hub runs on one",
            fix=f"list the cluster's login node alone under `{LOGIN_GROUP}` (ansible/inventories/cluster.yml)",
        )
    compute, _ = load_inventory(inventory, limit, group=COMPUTE_GROUP)
    return [*logins, *compute]


def _image_id(image: str) -> str:
    from dlworkshop.slurm.environment import image_facts

    return str(image_facts(image)["Id"])


def cluster_archives(settings: Settings, console: Console) -> tuple[Path, str, Path, str]:
    """Where the learner environment's tar goes and the hub's tar (made now), with their images' IDs."""
    from dlworkshop.image.docker import docker_client
    from dlworkshop.image.ensure import ensure_images
    from dlworkshop.slurm.environment import pack_hub

    if settings.image.source == "build":
        ensure_images(docker_client(), settings, console)
    folder = contract.state_dir() / "cluster"
    folder.mkdir(parents=True, exist_ok=True)
    learner, hub = settings.image.reference, settings.hub.image
    learner_id, hub_id = _image_id(learner), _image_id(hub)
    prefix = settings.slurm.env_prefix
    env_tar = folder / f"learner-env-{learner_id.split(':')[-1][:12]}{prefix.replace('/', '_')}.tar"
    hub_tar = folder / f"hub-{hub_id.split(':')[-1][:12]}.tar"
    for stale in [*folder.glob("learner-env-*.tar"), *folder.glob("hub-*.tar")]:
        if stale not in (env_tar, hub_tar):
            stale.unlink()  # an older image's: GBs each
    # The learner environment (GBs) is packed by the playbook, and only when the shared storage
    # lacks this image's (ansible/roles/workshop_learner_env).
    if not hub_tar.is_file():
        pack_hub(
            hub,
            str(contract.CLUSTER_HUB_PREFIX),
            hub_tar,
            say=lambda line: console.print(line, highlight=False),
        )
    return env_tar, learner_id, hub_tar, hub_id
