"""Size-limited work folders: the host's slots (dlworkshop/docker_host/work_volumes.py and its script) and the
hub's claim of one per learner (hub/backends/docker.py), apart from a running hub."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import docker
import pytest

from dlworkshop import contract
from dlworkshop.docker_host import work_volumes
from dlworkshop.settings import parse_settings
from hub.backends.docker import NoFreeWorkSlot, claim_work_volume
from hub.seats import seat_count

HUB = "dlw-test-hub"


def settings_of(text: str):  # type: ignore[no-untyped-def]
    return parse_settings("auth: {mode: shared-code, access_code: x}\n" + text)


class FakeEngine:
    """The few volume calls of docker.APIClient the claim makes, on a dict of volumes."""

    def __init__(self, volumes: list[dict[str, Any]]) -> None:
        self.volumes_by_name = {v["Name"]: v for v in volumes}

    def inspect_volume(self, name: str) -> dict[str, Any]:
        if name not in self.volumes_by_name:
            raise docker.errors.NotFound(name)
        return self.volumes_by_name[name]

    def volumes(self, filters: dict[str, list[str]]) -> dict[str, Any]:
        def matches(volume: dict[str, Any]) -> bool:
            for wanted in filters["label"]:
                key, _, value = wanted.partition("=")
                if key not in volume["Labels"] or (value and volume["Labels"][key] != value):
                    return False
            return True

        return {"Volumes": [v for v in self.volumes_by_name.values() if matches(v)]}

    def create_volume(
        self, name: str, driver: str, driver_opts: dict[str, str], labels: dict[str, str]
    ) -> None:
        self.volumes_by_name[name] = {
            "Name": name,
            "Driver": driver,
            "Options": driver_opts,
            "Labels": labels,
        }

    def remove_volume(self, name: str) -> None:
        del self.volumes_by_name[name]


def offer(slot: str, hub: str = HUB) -> dict[str, Any]:
    spec = work_volumes.free_slot_volume(hub, slot)
    return {"Name": spec["name"], "Driver": "local", "Options": spec["driver_opts"], "Labels": spec["labels"]}


def test_a_first_start_claims_the_lowest_free_slot_on_its_device() -> None:
    engine = FakeEngine([offer("slot-002"), offer("slot-001"), offer("slot-001", hub="another-hub")])
    name = claim_work_volume(engine, HUB, "ada")  # type: ignore[arg-type]
    volume = engine.volumes_by_name[name]
    assert name == contract.work_volume_name(HUB, "ada")
    assert volume["Labels"] == {
        contract.LABEL_HUB: HUB,
        contract.LABEL_USER: "ada",
        contract.LABEL_WORK_SLOT: "slot-001",
    }
    assert volume["Options"]["device"] == str(contract.work_slot_device(HUB, "slot-001"))
    assert contract.free_slot_volume_name(HUB, "slot-001") not in engine.volumes_by_name
    # The same learner again: the same volume, nothing else claimed.
    assert claim_work_volume(engine, HUB, "ada") == name  # type: ignore[arg-type]
    assert contract.free_slot_volume_name(HUB, "slot-002") in engine.volumes_by_name


def test_an_offer_left_by_an_interrupted_claim_is_never_handed_out_twice() -> None:
    engine = FakeEngine([offer("slot-001"), offer("slot-002")])
    claim_work_volume(engine, HUB, "ada")  # type: ignore[arg-type]
    engine.volumes_by_name.update({o["Name"]: o for o in [offer("slot-001")]})  # as if never removed
    assert engine.volumes_by_name[claim_work_volume(engine, HUB, "bo")]["Labels"][
        contract.LABEL_WORK_SLOT
    ] == (  # type: ignore[arg-type]
        "slot-002"
    )
    assert contract.free_slot_volume_name(HUB, "slot-001") not in engine.volumes_by_name


def test_no_free_slot_is_a_refusal_not_an_unlimited_volume() -> None:
    engine = FakeEngine([offer("slot-001")])
    claim_work_volume(engine, HUB, "ada")  # type: ignore[arg-type]
    with pytest.raises(NoFreeWorkSlot):
        claim_work_volume(engine, HUB, "bo")  # type: ignore[arg-type]
    assert contract.work_volume_name(HUB, "bo") not in engine.volumes_by_name


@pytest.mark.parametrize(
    ("text", "slots"),
    [
        # 20 learners, 20 seats, the admin, the smoke-test learner, 5 spare for typed names.
        ("learners: {count: 20}\nauth: {mode: shared-code, access_code: x, admins: [i]}\n", 47),
        ("learners: {names: [a, b, c]}\n", 3 + 1),
        ("learners: {count: 8, expected_concurrent: 4}\nprewarm: {seats: 0}\n", 8 + 1 + 2),
        # 8 learners, 4 seats and 2 hot spares, an admin and a helper, the smoke test, 2 for typos.
        (
            "workshop: {start: '2026-12-01T09:00:00+01:00', end: '2026-12-01T17:00:00+01:00'}\n"
            "learners: {count: 8, expected_concurrent: 4}\nprewarm: {spares: 2}\n"
            "auth: {mode: shared-code, access_code: x, admins: [i], helpers: [h]}\n",
            8 + 4 + 2 + 2 + 1 + 2,
        ),
    ],
)
def test_every_name_that_can_start_a_server_has_a_slot(text: str, slots: int) -> None:
    settings = parse_settings(
        text if "auth:" in text else "auth: {mode: shared-code, access_code: x}\n" + text
    )
    assert work_volumes.slot_count(settings) == slots
    # The seats counted are the hub's own.
    assert work_volumes.slot_count(settings) >= settings.learners.total + seat_count(settings) + 1


def test_only_slots_without_a_volume_are_offered_again() -> None:
    claimed = {
        "Name": "x-work-ada",
        "Labels": {contract.LABEL_HUB: HUB, contract.LABEL_WORK_SLOT: "slot-001"},
    }
    free = {"Name": "x-free", "Labels": {contract.LABEL_HUB: HUB, contract.LABEL_WORK_SLOT: "slot-002"}}
    elsewhere = {"Name": "y", "Labels": {contract.LABEL_HUB: "other", contract.LABEL_WORK_SLOT: "slot-003"}}
    plain = {"Name": "z", "Labels": None}
    slots = ["slot-001", "slot-002", "slot-003"]
    assert work_volumes.slots_to_register([claimed, free, elsewhere, plain], HUB, slots) == ["slot-003"]


def run_script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", str(work_volumes.SCRIPT), *args], capture_output=True, text=True)


@pytest.mark.docker
def test_the_script_makes_attaches_links_and_purges_images(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("losetup needs root (as `dlworkshop up` does)")
    images, devices = tmp_path / "images", f"/dev/dlworkshop-test-{os.getpid()}"
    try:
        made = run_script("prepare", str(images), devices, str(64 * 2**20), "1000", "slot-001", "slot-002")
        assert made.returncode == 0, made.stderr
        assert "created slot-001" in made.stdout and "attached slot-002" in made.stdout
        # Sparse: a 64M slot takes a fraction of that until a learner writes.
        assert (images / "slot-001.img").stat().st_size == 64 * 2**20
        assert (images / "slot-001.img").stat().st_blocks * 512 < 8 * 2**20
        link = Path(devices) / "slot-001"
        assert os.readlink(link).startswith("/dev/loop")
        info = subprocess.run(
            ["dumpe2fs", "-h", str(images / "slot-001.img")], capture_output=True, text=True
        ).stdout
        assert "Reserved block count:     0" in info and "Filesystem volume name:   slot-001" in info
        # Nothing to do the second time: it says nothing (the deploy's idempotence reads that).
        again = run_script("prepare", str(images), devices, str(64 * 2**20), "1000", "slot-001", "slot-002")
        assert again.returncode == 0 and again.stdout == ""
        # A slot a learner's container has mounted is never detached (its number would be freed
        # while the link still names it).
        mounted = tmp_path / "mounted"
        mounted.mkdir()
        subprocess.run(["mount", str(link), str(mounted)], check=True)
        try:
            kept = run_script("detach", str(images), devices)
            assert "kept slot-001: in use" in kept.stderr and link.exists()
            assert not (Path(devices) / "slot-002").exists()
        finally:
            subprocess.run(["umount", str(mounted)], check=True)
        # As after a reboot: links gone, images detached; `attach` brings both back.
        assert run_script("detach", str(images), devices).returncode == 0
        assert not link.exists()
        assert "attached slot-001" in run_script("attach", str(images), devices).stdout
        assert os.readlink(link).startswith("/dev/loop")
    finally:
        run_script("purge", str(images), devices)
    assert not images.exists() and not Path(devices).exists()
    attached = subprocess.run(["losetup", "--list"], capture_output=True, text=True).stdout
    assert str(images) not in attached
