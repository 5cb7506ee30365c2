"""Learners take their work home: `dlworkshop export` on the shared hub with five learners (two
of them stopped) writes one zip each whose contents are the learners' files byte for byte (lessons
they never changed, data links and JupyterLab's checkpoints left out) and a manifest; a learner
downloads a folder as one zip from their JupyterLab (jupyter-archive); a file changed after the
export is what `down --purge` would refuse on. `down --purge` itself is run on volumes of a hub
name of its own (the shared hub stays up): refused naming the learner, then done with --force."""

from __future__ import annotations

import base64
import contextlib
import csv
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import docker
import pytest
from rich.console import Console

from dlworkshop import contract
from dlworkshop.clients.export import unexported_work
from dlworkshop.hubclient import HubClient
from tests.fixtures.hub import RunningHub
from tests.fixtures.images import LEARNER_TEST_TAG, TEST_PREFIX, image_setting

pytestmark = [pytest.mark.docker]
hub_test = pytest.mark.hub

LEARNERS = [f"exp-{n}" for n in range(1, 6)]
STOPPED = LEARNERS[3:]
LESSON = "lessons/02-penguins.ipynb"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dlworkshop", *args], capture_output=True, text=True, timeout=900
    )


def put(client: HubClient, learner: str, path: str, payload: bytes) -> None:
    """Save a file as JupyterLab does (the contents API), creating its folders."""
    parts = path.split("/")
    for depth in range(1, len(parts)):
        client.server_api(
            learner, "PUT", f"/api/contents/{'/'.join(parts[:depth])}", json={"type": "directory"}
        )
    saved = client.server_api(
        learner,
        "PUT",
        f"/api/contents/{path}",
        json={"type": "file", "format": "base64", "content": base64.b64encode(payload).decode()},
    )
    assert saved.status_code in (200, 201), saved.text


def work_of(learner: str, number: int) -> dict[str, bytes]:
    return {
        "notes/today.txt": f"what {learner} learned\n".encode() * number,
        "models/penguins.keras": os.urandom(100_000 + number),
        "deep/er/still/results.csv": b"epoch,loss\n1,0.5\n",
        "unicode-é.txt": "ü".encode() * number,
    }


@pytest.fixture(scope="module")
def learners_work(running_hub: RunningHub) -> dict[str, dict[str, bytes]]:
    """Five learners' files, written through their servers; the last two servers then stopped."""
    written = {}
    for number, learner in enumerate(LEARNERS, start=1):
        files = work_of(learner, number)
        with running_hub.start_server(learner) as client:
            for path, payload in files.items():
                put(client, learner, path, payload)
            if learner == LEARNERS[0]:  # she changed a lesson; the others never touched theirs
                lesson = client.server_api(learner, "GET", f"/api/contents/{LESSON}?format=base64&type=file")
                files[LESSON] = base64.b64decode(lesson.json()["content"]) + b"\n"
                put(client, learner, LESSON, files[LESSON])
            # A checkpoint (JupyterLab's own copy) is not the learner's work.
            made = client.server_api(learner, "POST", "/api/contents/notes/today.txt/checkpoints")
            assert made.status_code == 201, made.text
            if learner in STOPPED:
                client.stop(learner)
        written[learner] = files
    return written


@hub_test
def test_export_writes_each_learners_files_byte_for_byte_running_or_stopped(
    running_hub: RunningHub, learners_work: dict[str, dict[str, bytes]], tmp_path: Path
) -> None:
    dest = tmp_path / "export"
    result = cli("export", "-c", str(running_hub.config_path), "--dest", str(dest))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for learner, files in learners_work.items():
        with zipfile.ZipFile(dest / f"{learner}.zip") as archive:
            assert sorted(archive.namelist()) == sorted(files), learner
            for path, payload in files.items():
                assert archive.read(path) == payload, f"{learner}: {path}"
    manifest = {row["learner"]: row for row in csv.DictReader((dest / "manifest.csv").open())}
    for learner, files in learners_work.items():
        row = manifest[learner]
        assert int(row["files"]) == len(files) and int(row["bytes"]) == sum(map(len, files.values()))
        assert row["sha256"] == hashlib.sha256((dest / row["zip"]).read_bytes()).hexdigest()
    stopped = {p["user"]: p["state"] for p in status_people(running_hub)}
    assert all(stopped[learner] == "stopped" for learner in STOPPED)

    # A learner changes a file after the export: `down --purge` would refuse on her, only.
    with running_hub.login(LEARNERS[0]) as client:
        put(client, LEARNERS[0], "notes/today.txt", b"one more thing\n")
    unsaved = unexported_work(running_hub.settings, Console(file=io.StringIO()))
    ours = [line for line in unsaved if line.split(":")[0] in LEARNERS]
    assert len(ours) == 1 and ours[0].startswith(f"{LEARNERS[0]}: changed since the export of"), unsaved


def status_people(hub: RunningHub) -> list[dict[str, Any]]:
    result = cli("status", "-c", str(hub.config_path), "--json")
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout)["people"])


@hub_test
def test_a_learner_downloads_a_folder_as_one_zip_from_jupyterlab(
    running_hub: RunningHub, learners_work: dict[str, dict[str, bytes]]
) -> None:
    learner = LEARNERS[1]
    with running_hub.login(learner) as client:
        # What JupyterLab's file browser asks for "Download as an archive" (jupyter-archive).
        answer = client.server_api(learner, "GET", "/directories/deep?archiveToken=1&archiveFormat=zip")
    assert answer.status_code == 200, answer.text[:500]
    with zipfile.ZipFile(io.BytesIO(answer.content)) as archive:
        assert (
            archive.read("deep/er/still/results.csv") == learners_work[learner]["deep/er/still/results.csv"]
        )


# ---- down --purge, on volumes of a hub name of its own (no hub runs: the shared one stays up) ----


def purge_config(tmp_path: Path) -> Path:
    config = tmp_path / "purge.yaml"
    config.write_text(
        "auth: {mode: shared-code, access_code: x}\n"
        f"image: {image_setting(LEARNER_TEST_TAG)}\n"
        f"hub: {{container_name: {TEST_PREFIX}-purge, network: {TEST_PREFIX}-purge, "
        f"data_volume: {TEST_PREFIX}-purge-hub-data}}\n"
    )
    return config


def write_into(volume: str, files: dict[str, bytes]) -> None:
    """Files into a work volume through a created (never started) container, as a learner's own."""
    engine = docker.from_env()
    container = engine.containers.create(LEARNER_TEST_TAG, command=["true"], volumes={volume: {"bind": "/w"}})
    try:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as archive:
            for path, payload in files.items():
                info = tarfile.TarInfo(path)
                info.size, info.uid, info.gid, info.mode = len(payload), 1000, 1000, 0o644
                archive.addfile(info, io.BytesIO(payload))
        assert container.put_archive("/w", buffer.getvalue())
    finally:
        container.remove(force=True)


def test_down_purge_refuses_while_a_learners_work_changed_since_the_export(
    learner_image: str, tmp_path: Path
) -> None:
    from dlworkshop.clients.export import record_path
    from dlworkshop.settings import load_settings

    config = purge_config(tmp_path)
    settings = load_settings(config)
    engine = docker.from_env()
    hub = settings.hub.container_name
    record_path(settings).unlink(missing_ok=True)
    volumes = [engine.volumes.create(contract.work_volume_name(hub, name)) for name in ("ada", "bo", "cy")]
    try:
        write_into(volumes[0].name, {"notes.txt": b"ada's notes\n"})
        write_into(volumes[1].name, {"model.keras": os.urandom(5000)})
        # cy never did anything: an empty folder holds no work to lose.
        refused = cli("down", "-c", str(config), "--purge")
        assert refused.returncode != 0 and "ada: never exported" in refused.stderr, refused.stderr
        assert "bo: never exported" in refused.stderr and "cy" not in refused.stderr

        exported = cli("export", "-c", str(config), "--dest", str(tmp_path / "zips"))
        assert exported.returncode == 0, exported.stdout + exported.stderr
        write_into(volumes[0].name, {"notes.txt": b"ada's notes, and one more line\n"})
        refused = cli("down", "-c", str(config), "--purge")
        assert refused.returncode != 0, refused.stdout
        assert "ada: changed since the export of" in refused.stderr and "bo" not in refused.stderr
        assert "--force" in refused.stderr and "Traceback" not in refused.stderr
        assert {v.name for v in volumes} <= {v.name for v in engine.volumes.list()}  # all kept

        forced = cli("down", "-c", str(config), "--purge", "--force")
        assert forced.returncode == 0, forced.stdout + forced.stderr
        assert not {v.name for v in volumes} & {v.name for v in engine.volumes.list()}
    finally:
        for volume in volumes:
            with contextlib.suppress(docker.errors.NotFound):
                engine.volumes.get(volume.name).remove(force=True)
