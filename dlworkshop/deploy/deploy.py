"""`dlworkshop deploy`: settings and inventory checked first, then the playbook, then a summary."""

from __future__ import annotations

import subprocess
from pathlib import Path

from rich.console import Console

from dlworkshop import contract
from dlworkshop.deploy.inventory import load_inventory
from dlworkshop.deploy.playbook_vars import check_deployable, playbook_vars
from dlworkshop.deploy.runner import DeployResult, run_playbook, summary_table
from dlworkshop.docker_host.hub_runtime import require_docker_hub
from dlworkshop.errors import CheckFailed
from dlworkshop.settings import Settings


def built_archives(settings: Settings, console: Console) -> Settings:
    """image.source build: build on this machine (as `dlworkshop up` does) and ship the images as
    archives, so the hosts need neither the sources nor a registry."""
    from dlworkshop.image.docker import docker_client
    from dlworkshop.image.ensure import ensure_images

    client = docker_client()
    ensure_images(client, settings, console)
    folder = contract.state_dir() / "deploy-images"
    folder.mkdir(parents=True, exist_ok=True)
    archives = {}
    for reference in (settings.image.reference, settings.hub.image):
        image_id = str(client.images.get(reference).id).split(":")[-1][:12]
        target = folder / f"{reference.replace('/', '_').replace(':', '_')}-{image_id}.tar"
        if not target.is_file():
            with console.status(f"saving {reference} to {target}"):
                partial = target.with_suffix(".part")
                with partial.open("wb") as out:
                    subprocess.run(["docker", "save", reference], stdout=out, check=True)
                partial.rename(target)
        archives[reference] = target
    image = settings.image.model_copy(
        update={"source": "archive", "archive": archives[settings.image.reference]}
    )
    hub = settings.hub.model_copy(update={"image_archive": archives[settings.hub.image]})
    return settings.model_copy(update={"image": image, "hub": hub})


def deploy(
    settings: Settings,
    inventory: Path,
    console: Console,
    check: bool = False,
    limit: str | None = None,
) -> DeployResult:
    # Everything that can be checked here is checked before any host is touched.
    require_docker_hub(settings, "deploy")
    check_deployable(settings)
    if settings.hub.backend == "slurm":
        from dlworkshop.deploy.cluster import cluster_archives, cluster_hosts
        from dlworkshop.deploy.playbook_vars import cluster_playbook_vars

        hosts = cluster_hosts(inventory, limit)
        extravars = cluster_playbook_vars(settings, *cluster_archives(settings, console))
    else:
        hosts, _ = load_inventory(inventory, limit)
        if settings.image.source == "build" and not check:
            settings = built_archives(settings, console)
        extravars = playbook_vars(settings)
    console.print(
        f"deploying to {', '.join(hosts)}{' (check mode: nothing is changed)' if check else ''}",
        highlight=False,
    )
    result = run_playbook(inventory, extravars, console, check=check, limit=limit)
    console.print(summary_table(result.stats))
    if not result.succeeded:
        first = result.failures[0] if result.failures else None
        others = (
            f" (and {len(result.failures) - 1} more failure(s) above)" if len(result.failures) > 1 else ""
        )
        raise CheckFailed(
            f"deploy failed on {first}{others}" if first else f"deploy failed: {result.status}",
            fix="fix the cause and run `dlworkshop deploy` again: it picks up where it stopped",
        )
    if check:
        console.print("check mode: nothing was changed; `changed` counts what a deploy would change")
    else:
        console.print(f"the hub is at [bold]{settings.hub.url}[/]", highlight=False)
    return result
