"""Fetch every registry file once, from a mirror or its canonical URLs, verified by hash.

A mirror is a plain folder or an HTTP(S) URL laid out `<mirror>/<dataset>/<file>`: an air-gapped
centre copies one folder. A file is only moved into place once its hash matches; a finished file
is never downloaded again, so an interrupted fetch resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pooch
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TextColumn, TransferSpeedColumn

from dlworkshop.contract import learner
from dlworkshop.data.registry import DataFile, Registry
from dlworkshop.errors import DataError

ATTEMPTS = 3


@dataclass(frozen=True)
class FileCheck:
    dataset: str
    name: str
    path: Path
    problem: str | None

    @property
    def ok(self) -> bool:
        return self.problem is None


def file_hash(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_file(dataset: str, item: DataFile, dest: Path) -> FileCheck:
    """Does the fetched copy exist and match its recorded hash?"""
    path = dest / dataset / item.name
    if not path.is_file():
        return FileCheck(dataset, item.name, path, "missing")
    known = item.known_hash
    if known is None:
        return FileCheck(dataset, item.name, path, None)
    algorithm, expected = known.split(":")
    got = file_hash(path, algorithm)
    if got != expected:
        return FileCheck(dataset, item.name, path, f"{algorithm} mismatch: expected {expected}, got {got}")
    return FileCheck(dataset, item.name, path, None)


class _RichBar:
    """The progress-bar protocol pooch's HTTPDownloader drives (tqdm-like), drawn with rich."""

    def __init__(self, progress: Progress, task: TaskID) -> None:
        self.progress, self.task = progress, task
        self.total: int | None = None

    def update(self, advance: int) -> None:
        self.progress.update(self.task, advance=advance, total=self.total)

    def reset(self) -> None:
        self.progress.reset(self.task, total=self.total)

    def close(self) -> None:
        self.progress.update(self.task, total=self.total)


def _sources(dataset: str, item: DataFile, mirror: str | None) -> list[str]:
    if mirror is None:
        return list(item.urls)
    if "://" in mirror:
        return [f"{mirror.rstrip('/')}/{dataset}/{item.name}"]
    return [str(Path(mirror) / dataset / item.name)]


def _mirror_reachable(mirror: str, ca_bundle: Path | None) -> None:
    if "://" not in mirror:
        if not Path(mirror).is_dir():
            raise DataError(
                f"the mirror folder {mirror} does not exist", fix="give a folder laid out <dataset>/<file>"
            )
        return
    import ssl

    import httpx

    verify = ssl.create_default_context(cafile=str(ca_bundle)) if ca_bundle else True
    try:
        httpx.head(mirror, timeout=10, follow_redirects=True, verify=verify)
    except httpx.HTTPError as exc:
        raise DataError(
            f"the data mirror {mirror} cannot be reached ({type(exc).__name__})",
            fix="check the mirror URL and that its server runs, or fetch from a mirror folder",
        ) from None


def _download(source: str, target: Path, bar: _RichBar, ca_bundle: Path | None) -> None:
    """Copy or download one source to target, without verification (done by the caller)."""
    if "://" not in source:
        if not Path(source).is_file():
            raise FileNotFoundError(source)
        shutil.copyfile(source, target)
        size = target.stat().st_size
        bar.total = size
        bar.update(size)
        return
    # A CA bundle lets the download trust a TLS-intercepting proxy without turning verification off.
    extra = {"verify": str(ca_bundle)} if ca_bundle else {}
    downloader = pooch.HTTPDownloader(progressbar=bar, timeout=60, **extra)
    downloader(source, str(target), None)


def _fetch_one(
    dataset: str,
    item: DataFile,
    dest: Path,
    mirror: str | None,
    progress: Progress,
    ca_bundle: Path | None = None,
) -> Path:
    final = dest / dataset / item.name
    if check_file(dataset, item, dest).ok:
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    task = progress.add_task(f"{dataset}/{item.name}", total=item.size)
    errors: list[str] = []
    for source in _sources(dataset, item, mirror):
        for attempt in range(1, ATTEMPTS + 1):
            with tempfile.NamedTemporaryFile(dir=final.parent, prefix=".part-", delete=False) as tmp:
                partial = Path(tmp.name)
            try:
                _download(source, partial, _RichBar(progress, task), ca_bundle)
            except Exception as exc:  # network errors come in many types; all mean "try again"
                partial.unlink(missing_ok=True)
                errors.append(f"{source}: {exc}")
                if attempt < ATTEMPTS:
                    time.sleep(attempt)
                continue
            known = item.known_hash
            if known is not None:
                algorithm, expected = known.split(":")
                got = file_hash(partial, algorithm)
                if got != expected:
                    partial.unlink()
                    raise DataError(
                        f"{dataset}/{item.name} from {source} does not match its recorded {algorithm}: "
                        f"expected {expected}, got {got}; the file was deleted and not staged",
                        fix="check the mirror's copy; if the upstream file changed on purpose, "
                        "run `dlworkshop data lock`",
                    )
            partial.replace(final)
            final.chmod(0o644)
            return final
    raise DataError(
        f"could not fetch {dataset}/{item.name}: {errors[-1] if errors else 'no source'}",
        fix="check the network or give --mirror (a folder or URL laid out <dataset>/<file>)",
    )


@contextmanager
def _progress() -> Iterator[Progress]:
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        transient=False,
    ) as progress:
        yield progress


def write_url_map(registry: Registry, dest: Path) -> Path:
    """Map each canonical URL to its verified copy, for the learner's offline URL hook
    (dlworkshop_learner.offline_urls)."""
    mapping = {
        url: f"{dataset}/{item.name}"
        for dataset, item in registry.files()
        if (dest / dataset / item.name).is_file()
        for url in item.urls
    }
    path = dest / learner.URL_MAP_FILE
    path.write_text(json.dumps(mapping, indent=1, sort_keys=True), encoding="utf-8")
    return path


def fetch(
    registry: Registry,
    dest: Path,
    mirror: str | None = None,
    only: list[str] | None = None,
    ca_bundle: Path | None = None,
) -> list[Path]:
    """Fetch the selected datasets into dest/<dataset>/<file>, each verified; returns the paths.
    `ca_bundle`: the CAs an HTTPS source is verified against (default: the system's)."""
    selected = registry.select(only)
    if mirror is not None:
        _mirror_reachable(mirror, ca_bundle)
    dest.mkdir(parents=True, exist_ok=True)
    fetched = []
    with _progress() as progress:
        for dataset, spec in selected.items():
            for item in spec.files:
                fetched.append(_fetch_one(dataset, item, dest, mirror, progress, ca_bundle))
    write_url_map(registry, dest)
    return fetched


def verify(registry: Registry, dest: Path, only: list[str] | None = None) -> list[FileCheck]:
    return [
        check_file(dataset, item, dest)
        for dataset, spec in registry.select(only).items()
        for item in spec.files
    ]
