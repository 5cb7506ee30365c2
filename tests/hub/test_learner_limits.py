"""What one learner can use on the shared test hub, and that using all of it hurts nobody else:
the work folder's hard size (resources.disk: 256M here), the read-only root, the bounded /tmp,
and the quota in JupyterLab's status bar."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dlworkshop import contract
from dlworkshop.hubclient import HubError
from tests.fixtures.hub import RunningHub
from tests.hub.learner_kernels import LearnerKernel, learner_kernel

pytestmark = [pytest.mark.docker, pytest.mark.hub]

QUOTA = 256 * 2**20
FILL = """
import errno, os
def fill(path):
    try:
        with open(path, "wb") as out:
            while True:
                out.write(b"\\0" * 2**20)
                out.flush()
                os.fsync(out.fileno())
    except OSError as error:
        return f"{errno.errorcode[error.errno]} {error.strerror} after {os.path.getsize(path) // 2**20} MiB"
"""


def slot_image(hub: RunningHub, name: str) -> Path:
    """The image file on this host that holds the learner's work folder."""
    import docker

    volume = docker.from_env().volumes.get(contract.work_volume_name(hub.settings.hub.container_name, name))
    slot = volume.attrs["Labels"][contract.LABEL_WORK_SLOT]
    return contract.work_images_dir(hub.settings.hub.container_name) / f"{slot}.img"


def allocated(path: Path) -> int:
    """Bytes of this host's disk the (sparse) file takes."""
    return path.stat().st_blocks * 512


@pytest.fixture(scope="module")
def filler(running_hub: RunningHub) -> Iterator[LearnerKernel]:
    kernel = learner_kernel(running_hub, "quota-ada")
    kernel.run(FILL)
    yield kernel
    kernel.stop()


def test_the_work_folder_is_a_file_system_of_the_quotas_size(
    running_hub: RunningHub, filler: LearnerKernel
) -> None:
    out = filler.run("import shutil; print(shutil.disk_usage('.').total, os.getcwd())")
    total, cwd = out.split()
    assert cwd == contract.learner.WORK_FOLDER
    # ext4 keeps a few percent for its journal and inode tables; nothing is reserved for root.
    assert 0.85 * QUOTA < int(total) <= QUOTA
    volume = running_hub.container("quota-ada").attrs["Mounts"]
    work = next(m for m in volume if m["Destination"] == contract.learner.WORK_FOLDER)
    assert work["Name"] == contract.work_volume_name(running_hub.settings.hub.container_name, "quota-ada")


def test_a_learner_who_fills_the_quota_gets_no_space_left_and_nobody_else_notices(
    running_hub: RunningHub, filler: LearnerKernel
) -> None:
    try:
        said = filler.run("print(fill('big.bin'))")
        assert said.startswith("ENOSPC No space left on device"), said
        # A neighbour saves a notebook in their own folder and starts a server: unaffected.
        neighbour = running_hub.start_server("quota-bo")
        notebook = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
        saved = running_hub.api_get(neighbour, "quota-bo", "/api/contents")
        assert saved.status_code == 200
        put = neighbour.server_api(
            "quota-bo",
            "PUT",
            "/api/contents/mine.ipynb",
            json={"type": "notebook", "format": "json", "content": notebook},
        )
        assert put.status_code in (200, 201), put.text
        assert running_hub.api_get(neighbour, "quota-bo", "/api/contents/mine.ipynb").status_code == 200
        assert httpx.get(f"{running_hub.url}/hub/api", timeout=10).status_code == 200
        # And the learner who filled it frees it again, on the host's disk too.
        image = slot_image(running_hub, "quota-ada")
        assert allocated(image) > 0.8 * QUOTA
        assert filler.run("os.remove('big.bin'); print('freed')").strip() == "freed"
        deadline = time.monotonic() + 60  # ext4 discards at its next journal commit
        while allocated(image) > QUOTA / 4 and time.monotonic() < deadline:
            time.sleep(1)
        assert allocated(image) <= QUOTA / 4, f"{image} still holds {allocated(image)} bytes"
    finally:
        filler.run("os.path.exists('big.bin') and os.remove('big.bin')")
        with contextlib.suppress(HubError):
            running_hub.login("quota-bo").stop("quota-bo")


def test_tmp_is_bounded_and_the_rest_of_the_container_is_read_only(filler: LearnerKernel) -> None:
    said = filler.run("print(fill('/tmp/big.bin')); os.remove('/tmp/big.bin')")
    # resources.tmp of the test hub, counted against the learner's memory.
    assert said.startswith("ENOSPC No space left on device after 25"), said
    said = filler.run(
        "try:\n    open('/opt/venv/mine.txt', 'w')\nexcept OSError as error:\n    print(errno.errorcode[error.errno])"
    )
    assert said.strip() == "EROFS"


def test_the_status_bar_shows_the_work_folder_against_its_quota(
    running_hub: RunningHub, filler: LearnerKernel
) -> None:
    # jupyter-resource-usage's endpoint, which JupyterLab's status bar polls.
    metrics = filler.server.request("GET", "api/metrics/v1").json()
    assert 0.85 * QUOTA < metrics["disk_total"] <= QUOTA
    assert 0 < metrics["disk_used"] < metrics["disk_total"]


def test_after_a_reboot_a_start_says_the_work_folders_are_not_attached_until_up_attaches_them(
    running_hub: RunningHub,
) -> None:
    """As after a host reboot: the links to the slots' loop devices are gone (/dev is empty after
    a reboot; the images stay). A start says so plainly instead of mounting anything else;
    attaching them again (what `up` and the deploy's boot unit do) lets it through."""
    import shutil

    import docker as docker_sdk

    from dlworkshop.docker_host import work_volumes

    hub = running_hub.settings.hub.container_name
    shutil.rmtree(str(contract.HOST_WORK_DEVICES / hub))
    try:
        learner = running_hub.login("reboot-ada")
        with pytest.raises(HubError, match="the work folders are not ready yet"):
            learner.spawn("reboot-ada", timeout=120)
    finally:
        client = docker_sdk.from_env()
        work_volumes.prepare(client, running_hub.settings)
        client.close()
    learner.spawn("reboot-ada", timeout=180)
    assert running_hub.api_get(learner, "reboot-ada", "/api/contents").status_code == 200
    learner.stop("reboot-ada")
