"""`dlworkshop export`'s parts without an engine: what is left out of a learner's zip, the
fingerprint `down --purge` compares, and a streamed archive written into a zip byte for byte
(dlworkshop/clients/export.py)."""

from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile
from pathlib import PurePosixPath

from dlworkshop.clients.export import Content, _Chunks, left_out, zip_entry


def test_jupyterlabs_own_files_are_left_out_and_the_learners_kept() -> None:
    for path in (
        "lessons/.ipynb_checkpoints/02-penguins-checkpoint.ipynb",
        ".Trash-1000/files/a.py",
        "x/__pycache__/m.pyc",
    ):
        assert left_out(PurePosixPath(path)), path
    for path in ("my-model.keras", "lessons/02-penguins.ipynb", ".hidden-notes.txt", "logs/fit/events.out"):
        assert not left_out(PurePosixPath(path)), path


def test_the_fingerprint_changes_with_any_path_or_content_and_not_with_order() -> None:
    one = Content([("a.ipynb", 3, "aa"), ("b.csv", 5, "bb")])
    assert one.digest == Content([("b.csv", 5, "bb"), ("a.ipynb", 3, "aa")]).digest
    assert one.digest != Content([("a.ipynb", 3, "ab"), ("b.csv", 5, "bb")]).digest
    assert one.digest != Content([("c.ipynb", 3, "aa"), ("b.csv", 5, "bb")]).digest
    assert one.bytes == 8 and Content().digest == Content().digest


def test_a_streamed_archive_is_zipped_byte_for_byte() -> None:
    files = {"work/notes.txt": b"hello\n", "work/sub/data.bin": bytes(range(256)) * 4096}
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w") as archive:
        for name, payload in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(payload), 1_700_000_000, 0o644
            archive.addfile(info, io.BytesIO(payload))
    chunks = [tar_bytes.getvalue()[i : i + 1000] for i in range(0, len(tar_bytes.getvalue()), 1000)]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zipped:
        keep = zip_entry(zipped)
        with tarfile.open(fileobj=io.BufferedReader(_Chunks(chunks)), mode="r|") as streamed:
            hashes = {
                member.name: keep(member.name.removeprefix("work/"), member, streamed.extractfile(member))  # type: ignore[arg-type]
                for member in streamed
            }
    with zipfile.ZipFile(out) as zipped:
        for name, payload in files.items():
            assert zipped.read(name.removeprefix("work/")) == payload
            assert hashes[name] == hashlib.sha256(payload).hexdigest()
        assert zipped.getinfo("notes.txt").date_time[0] == 2023
