"""Learners' work folders with a hard size limit (resources.disk), prepared on the host.

Each learner's ~/work is a fixed-size ext4 file system: an image file attached to a loop device,
mounted by Docker's `local` volume driver (`device=`). That is what works on an overlay2-on-ext4
engine (the driver's own `o=loop`, project quotas and `--storage-opt size` do not), and the quota
is the file system's size: writing past it is `No space left on device` in that learner's notebook
and nowhere else.

Why a pool of slots rather than one image per learner's name: in shared-code and github modes
nobody's name is known before they log in, and the hub container cannot run losetup. So the host
(`dlworkshop up`, the deploy) prepares as many slots as could ever log in, attaches them, and
registers each with Docker as a free volume (`contract.free_slot_volume_name`). At a learner's first
start the hub claims a free slot: it creates the learner's work volume (`contract.work_volume_name`,
the name DockerSpawner mounts) on that slot's device, labelled with the slot, and removes the free
one. Docker itself then records who has which slot, through hub and engine restarts.

The host side, the same in `up` and in the deploy's role: `work_volumes.sh` (images, loop devices,
links; at boot too), and the pure functions below (which slots, which free volumes to register),
called by `up` and by the playbook's filters.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlworkshop import contract
from dlworkshop.errors import WorkshopError
from dlworkshop.settings import Settings

if TYPE_CHECKING:
    from docker import DockerClient

SCRIPT = Path(__file__).with_name("work_volumes.sh")
# What the hardened mount allows on a learner's work folder. `discard`: what a learner deletes is
# given back to the host's disk (the image is sparse; without it, it keeps the most it ever held).
MOUNT_OPTIONS = "nodev,nosuid,discard"


def names_known_in_advance(settings: Settings) -> bool:
    return settings.auth.mode == "accounts" or bool(settings.learners.names)


def slot_count(settings: Settings) -> int:
    """Every name that may start a server: the learners, the shared-code seats (hub/seats.py) and
    hot spares (hub/spares.py), the admins, the helpers and the smoke-test learner; where learners
    type their names (shared-code, github), a quarter more for second names and typos. A learner
    who takes a seat or a spare works on its volume; the spares left unclaimed at any time are at
    most prewarm.spares, so that many more slots cover every spare the day names."""
    learners = settings.learners
    seats = settings.prewarm_seats + settings.prewarm.spares
    typos = 0 if names_known_in_advance(settings) else max(2, learners.total // 4)
    staff = len(set(settings.auth.admins) | set(settings.auth.helpers))
    return learners.total + seats + staff + 1 + typos


def slot_names(settings: Settings) -> list[str]:
    return [contract.work_slot_name(number) for number in range(1, slot_count(settings) + 1)]


def free_slot_volume(hub: str, slot: str) -> dict[str, Any]:
    """The Docker volume that offers `slot` to the hub (keyword arguments of the SDK's
    volumes.create; the role passes the same to community.docker.docker_volume)."""
    return {
        "name": contract.free_slot_volume_name(hub, slot),
        "driver": "local",
        "driver_opts": {
            "type": contract.WORK_SLOT_FS,
            "device": str(contract.work_slot_device(hub, slot)),
            "o": MOUNT_OPTIONS,
        },
        "labels": {contract.LABEL_HUB: hub, contract.LABEL_WORK_SLOT: slot},
    }


def slots_to_register(volumes: Iterable[Mapping[str, Any]], hub: str, slots: Iterable[str]) -> list[str]:
    """The slots with no volume yet: neither offered (free) nor claimed by a learner. `volumes` as
    the engine lists them (`Name`, `Labels`)."""
    held = {
        (volume.get("Labels") or {}).get(contract.LABEL_WORK_SLOT)
        for volume in volumes
        if (volume.get("Labels") or {}).get(contract.LABEL_HUB) == hub
    }
    return [slot for slot in slots if slot not in held]


def _script(*args: str) -> None:
    result = subprocess.run(["sh", str(SCRIPT), *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise WorkshopError(
            f"preparing the learners' work folders failed: {result.stderr.strip() or result.stdout.strip()}",
            fix="run `dlworkshop up` as root on a host with losetup and mkfs.ext4 (e2fsprogs), "
            "or set resources.disk: null to run without a work-folder quota",
        )


def devices_dir(hub: str) -> str:
    return str(contract.HOST_WORK_DEVICES / hub)


def prepare(client: DockerClient, settings: Settings) -> list[str]:
    """Images made where missing, attached and linked (again after a reboot), and every slot
    without a volume offered to the hub; returns the slots newly offered."""
    hub = settings.hub.container_name
    disk = settings.resources.disk
    assert disk is not None  # callers check that a quota is asked for
    slots = slot_names(settings)
    _script(
        "prepare",
        str(contract.work_images_dir(hub)),
        devices_dir(hub),
        str(disk),
        str(contract.learner.UID),
        *slots,
    )
    listed = [
        volume.attrs for volume in client.volumes.list(filters={"label": f"{contract.LABEL_HUB}={hub}"})
    ]
    offered = slots_to_register(listed, hub, slots)
    for slot in offered:
        client.volumes.create(**free_slot_volume(hub, slot))
    return offered


def images_exist(hub: str) -> bool:
    return any(contract.work_images_dir(hub).glob("*.img"))


def detach(hub: str) -> None:
    """Loop devices and links gone (the images stay; the next `up` attaches them again)."""
    if contract.work_images_dir(hub).is_dir():
        _script("detach", str(contract.work_images_dir(hub)), devices_dir(hub))


def purge(hub: str) -> None:
    """Detach, then delete every image of this hub: the learners' work is gone."""
    if contract.work_images_dir(hub).is_dir():
        _script("purge", str(contract.work_images_dir(hub)), devices_dir(hub))
