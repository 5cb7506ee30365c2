"""`dlworkshop data lock`: record the sha256 and size of files the registry has no hash for yet,
from a real download, editing the YAML text in place so its comments survive."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from dlworkshop.data.fetch import _fetch_one, _progress, file_hash
from dlworkshop.data.registry import DataFile, Registry


def _set_field(text: str, file_name: str, key: str, value: str) -> str:
    """Set `key: null` to value in the block of the entry `- name: file_name`, keeping comments."""
    lines = text.splitlines(keepends=True)
    header = re.compile(rf"^(\s*)- name: {re.escape(file_name)}\s*$")
    for index, line in enumerate(lines):
        match = header.match(line)
        if not match:
            continue
        dash = len(match.group(1))
        field = re.compile(rf"^(\s*{key}:)\s*null(\s*#.*)?$")
        for inner in range(index + 1, len(lines)):
            body = lines[inner]
            if body.strip() and len(body) - len(body.lstrip()) <= dash:
                break
            found = field.match(body.rstrip("\n"))
            if found:
                lines[inner] = f"{found.group(1)} {value}{found.group(2) or ''}\n"
                return "".join(lines)
        lines.insert(index + 1, f"{' ' * (dash + 2)}{key}: {value}\n")
        return "".join(lines)
    return text


def unlocked_files(registry: Registry) -> list[tuple[str, DataFile]]:
    return [(dataset, item) for dataset, item in registry.files() if not item.sha256]


def lock(registry: Registry, registry_file: Path, mirror: str | None = None) -> list[tuple[str, str, int]]:
    """Download every file without a sha256, record sha256 and size; returns what was recorded."""
    text = registry_file.read_text(encoding="utf-8")
    recorded = []
    with tempfile.TemporaryDirectory() as scratch, _progress() as progress:
        for dataset, item in unlocked_files(registry):
            path = _fetch_one(dataset, item, Path(scratch), mirror, progress)
            digest, size = file_hash(path, "sha256"), path.stat().st_size
            text = _set_field(text, item.name, "sha256", digest)
            text = _set_field(text, item.name, "size", str(size))
            recorded.append((f"{dataset}/{item.name}", digest, size))
    registry_file.write_text(text, encoding="utf-8")
    return recorded
