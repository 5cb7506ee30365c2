"""`dlworkshop export`: every learner's work folder as one zip, and what `down --purge` checks first.

Each learner's work volume is read through a short-lived helper container that is created with the
volume mounted read-only and never started: the engine's archive API streams the folder out of it
(as `docker cp` does), whether the learner's server runs or not, and nothing enters a learner's
container. Only the Docker API is used, so `DOCKER_HOST=ssh://admin@hub-host dlworkshop export`
exports a deployed Docker hub's learners to this machine.

Left out of a zip: the lessons a learner never changed (compared with the image's copies), links
(the data links point into the image's read-only data), and JupyterLab's own files
(.ipynb_checkpoints, .virtual_documents, the trash). Everything else is the learner's, byte for byte.

Each export records, on this machine, a fingerprint of each folder's exported content (every
file's path and sha256); `dlworkshop down --purge` recomputes it and refuses to delete a volume
whose work changed since, or that was never exported (unless --force).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import tarfile
import uuid
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from dlworkshop import contract
from dlworkshop.errors import WorkshopError
from dlworkshop.settings import Settings

if TYPE_CHECKING:
    from docker import DockerClient

# JupyterLab's own files, not the learner's work.
LEFT_OUT_FOLDERS = frozenset({".ipynb_checkpoints", ".virtual_documents", "__pycache__"})
# Where a helper container sees the volume it reads.
MOUNT = "/dlworkshop-export/work"
HUB_DATA_MOUNT = "/dlworkshop-export/hub"
MANIFEST = "manifest.csv"
RECORD = "exports.json"
CHUNK = 1 << 20


@dataclass(frozen=True)
class WorkFolder:
    volume: str
    user: str  # the JupyterHub user (a seat in shared-code mode)
    learner: str  # the name the learner knows (typed at login), else the user


@dataclass
class Content:
    """What a work folder holds for its learner: (path, size, sha256) of each file kept."""

    files: list[tuple[str, int, str]] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        return sum(size for _, size, _ in self.files)

    @property
    def digest(self) -> str:
        """The fingerprint `down --purge` compares: changes with any file's path or content."""
        lines = "".join(f"{path}\t{size}\t{sha}\n" for path, size, sha in sorted(self.files))
        return hashlib.sha256(lines.encode()).hexdigest()


@dataclass(frozen=True)
class Exported:
    folder: WorkFolder
    content: Content
    zip_path: Path
    sha256: str


class _Chunks(io.RawIOBase):
    """The engine's archive stream (an iterator of byte chunks) as a file tarfile can read."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._left = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._left:
            try:
                self._left = next(self._chunks)
            except StopIteration:
                return 0
        count = min(len(buffer), len(self._left))
        buffer[:count] = self._left[:count]
        self._left = self._left[count:]
        return count


def left_out(path: PurePosixPath) -> bool:
    return any(part in LEFT_OUT_FOLDERS or part.startswith(".Trash-") for part in path.parts)


@dataclass
class Helper:
    """A helper container, created (never started) from the learner image with volumes mounted
    read-only, whose files the engine's archive API streams out; removed afterwards."""

    client: DockerClient
    settings: Settings
    volumes: dict[str, str]  # volume -> where it is mounted

    def __enter__(self) -> Any:
        hub = self.settings.hub.container_name
        self.container = self.client.containers.create(
            self.settings.image.reference,
            command=["true"],
            name=f"{hub}-export-{uuid.uuid4().hex[:8]}",
            volumes={volume: {"bind": target, "mode": "ro"} for volume, target in self.volumes.items()},
            network_mode="none",
            labels={contract.LABEL_HUB: hub},
        )
        return self.container

    def __exit__(self, *exc_info: object) -> None:
        self.container.remove(force=True)


def archive_members(container: Any, path: str) -> Iterator[tuple[tarfile.TarInfo, IO[bytes] | None]]:
    """The files under `path` of a (created) container, streamed: (member, its content)."""
    import docker

    try:
        stream, _ = container.get_archive(path, chunk_size=CHUNK)
    except docker.errors.NotFound:
        return
    with tarfile.open(fileobj=io.BufferedReader(_Chunks(stream), CHUNK), mode="r|") as archive:
        for member in archive:
            yield member, archive.extractfile(member) if member.isfile() else None


def lesson_hashes(client: DockerClient, settings: Settings) -> dict[str, str]:
    """sha256 of each lesson file the image copies into ~/work/lessons, by its path there."""
    hashes = {}
    with Helper(client, settings, {}) as container:
        for member, content in archive_members(container, contract.learner.LESSONS_DIR):
            if content is not None:
                # "lessons/02-penguins.ipynb": the same relative path as in the work folder.
                relative = PurePosixPath(*PurePosixPath(member.name).parts[1:])
                hashes[str(PurePosixPath("lessons") / relative)] = hashlib.sha256(content.read()).hexdigest()
    return hashes


def seat_names(client: DockerClient, settings: Settings) -> dict[str, str]:
    """Seat -> the name its learner typed (shared-code mode), from the hub's volume."""
    import docker

    try:
        client.volumes.get(settings.hub.data_volume)
    except docker.errors.NotFound:
        return {}
    with Helper(client, settings, {settings.hub.data_volume: HUB_DATA_MOUNT}) as container:
        for _, content in archive_members(container, f"{HUB_DATA_MOUNT}/{contract.SEATS_FILE}"):
            if content is not None:
                return {seat: name for name, seat in json.loads(content.read()).items()}
    return {}


def work_folders(client: DockerClient, settings: Settings) -> list[WorkFolder]:
    """This hub's learners' work volumes, running or not."""
    prefix = contract.work_volume_prefix(settings.hub.container_name)
    seats = seat_names(client, settings)
    folders = []
    for volume in client.volumes.list():
        if volume.name.startswith(prefix):
            user = volume.name[len(prefix) :]
            folders.append(WorkFolder(volume.name, user, seats.get(user, user)))
    return sorted(folders, key=lambda f: f.learner)


def read_work(
    client: DockerClient,
    settings: Settings,
    folder: WorkFolder,
    lessons: dict[str, str],
    keep: Callable[[str, tarfile.TarInfo, IO[bytes]], str] | None = None,
) -> Content:
    """Walk one work folder; for each file that is the learner's, `keep(path, member, content)`
    (which consumes the content and returns its sha256), else just hash it."""
    content = Content()
    with Helper(client, settings, {folder.volume: MOUNT}) as container:
        for member, data in archive_members(container, MOUNT):
            if data is None:  # folders, links (the data links), devices
                continue
            path = PurePosixPath(*PurePosixPath(member.name).parts[1:])
            if not path.parts or left_out(path):
                continue
            name = str(path)
            if name in lessons:
                payload = data.read()
                sha = hashlib.sha256(payload).hexdigest()
                if sha == lessons[name]:
                    continue  # a lesson as the image ships it: never touched
                data = io.BytesIO(payload)
            if keep is not None:
                sha = keep(name, member, data)
            else:
                digest = hashlib.sha256()
                while chunk := data.read(CHUNK):
                    digest.update(chunk)
                sha = digest.hexdigest()
            content.files.append((name, member.size, sha))
    return content


def zip_entry(archive: zipfile.ZipFile) -> Callable[[str, tarfile.TarInfo, IO[bytes]], str]:
    """A `keep` that writes each file into the zip as it streams, and returns its sha256."""

    def keep(name: str, member: tarfile.TarInfo, data: IO[bytes]) -> str:
        stamp = datetime.fromtimestamp(max(member.mtime, 315532800))  # zip dates start in 1980
        info = zipfile.ZipInfo(name, date_time=stamp.timetuple()[:6])
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = (member.mode & 0o7777 | 0o100000) << 16
        digest = hashlib.sha256()
        with archive.open(info, "w", force_zip64=member.size >= 2**31) as out:
            while chunk := data.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
        return digest.hexdigest()

    return keep


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def record_path(settings: Settings) -> Path:
    return contract.state_dir() / settings.hub.container_name / RECORD


def read_record(settings: Settings) -> dict[str, dict[str, Any]]:
    try:
        return dict(json.loads(record_path(settings).read_text()))
    except (FileNotFoundError, ValueError):
        return {}


def write_record(settings: Settings, exported: list[Exported]) -> None:
    record = read_record(settings)
    at = datetime.now().astimezone().isoformat(timespec="seconds")
    for done in exported:
        record[done.folder.volume] = {
            "learner": done.folder.learner,
            "digest": done.content.digest,
            "files": len(done.content.files),
            "zip": str(done.zip_path),
            "sha256": done.sha256,
            "exported": at,
        }
    path = record_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_suffix(".tmp")
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # learners' names: private
    with os.fdopen(fd, "w") as handle:
        json.dump(record, handle, indent=1, sort_keys=True)
    os.replace(scratch, path)


def zip_name(folder: WorkFolder, taken: set[str]) -> str:
    base = folder.learner.replace("/", "_") or folder.user
    name = f"{base}.zip" if f"{base}.zip" not in taken else f"{base}-{folder.user}.zip"
    taken.add(name)
    return name


def require_learner_image(client: DockerClient, settings: Settings) -> None:
    import docker

    try:
        client.images.get(settings.image.reference)
    except docker.errors.ImageNotFound:
        raise WorkshopError(
            f"the learner image {settings.image.reference} is not on this engine: it holds the lessons "
            "to compare with and reads the volumes",
            fix="build or load it (`dlworkshop up` builds it) and run this again; to delete the work "
            "unread: `dlworkshop down --purge --force`",
        ) from None


def progress_bar(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def export(settings: Settings, dest: Path, console: Console) -> list[Exported]:
    """One zip per learner's work folder in `dest`, a manifest beside them; recorded on this
    machine for `down --purge`."""
    from dlworkshop.image.docker import docker_client

    client = docker_client()
    require_learner_image(client, settings)
    folders = work_folders(client, settings)
    if not folders:
        raise WorkshopError(
            f"no learner's work folder of the hub {settings.hub.container_name} on this engine",
            fix="check -c workshop.yaml (hub.container_name), or DOCKER_HOST for a deployed hub's engine",
        )
    dest.mkdir(parents=True, exist_ok=True)
    lessons = lesson_hashes(client, settings)
    exported: list[Exported] = []
    taken: set[str] = set()
    with progress_bar(console) as progress:
        task = progress.add_task("exporting", total=len(folders))
        for folder in folders:
            progress.update(task, description=f"exporting {folder.learner}")
            target = dest / zip_name(folder, taken)
            scratch = target.with_suffix(".zip.part")
            with zipfile.ZipFile(scratch, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
                content = read_work(client, settings, folder, lessons, zip_entry(archive))
            os.replace(scratch, target)
            exported.append(Exported(folder, content, target, file_sha256(target)))
            progress.advance(task)
    write_manifest(dest / MANIFEST, exported)
    write_record(settings, exported)
    table = Table("learner", "server", "files", "bytes", "zip")
    for done in exported:
        table.add_row(
            done.folder.learner,
            done.folder.user,
            str(len(done.content.files)),
            str(done.content.bytes),
            done.zip_path.name,
        )
    console.print(table)
    console.print(f"{len(exported)} zips and {MANIFEST} in {dest}", highlight=False)
    return exported


def write_manifest(path: Path, exported: list[Exported]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["learner", "server", "files", "bytes", "sha256", "zip"])
        for done in exported:
            writer.writerow(
                [
                    done.folder.learner,
                    done.folder.user,
                    len(done.content.files),
                    done.content.bytes,
                    done.sha256,
                    done.zip_path.name,
                ]
            )


def unexported_work(settings: Settings, console: Console) -> list[str]:
    """Learners whose work folder holds work that no export has (changed since the last one, or
    never exported): one line each. An untouched folder (only the lessons as shipped) is not."""
    from dlworkshop.image.docker import docker_client

    client = docker_client()
    folders = work_folders(client, settings)
    if not folders:
        return []
    require_learner_image(client, settings)
    lessons = lesson_hashes(client, settings)
    record = read_record(settings)
    problems = []
    with progress_bar(console) as progress:
        task = progress.add_task("checking what was exported", total=len(folders))
        for folder in folders:
            progress.update(task, description=f"checking {folder.learner}")
            content = read_work(client, settings, folder, lessons)
            progress.advance(task)
            shown = folder.learner if folder.learner == folder.user else f"{folder.learner} ({folder.user})"
            last = record.get(folder.volume)
            if last is None:
                if content.files:
                    problems.append(f"{shown}: never exported ({len(content.files)} files)")
            elif last["digest"] != content.digest:
                problems.append(f"{shown}: changed since the export of {last['exported']}")
    return problems
