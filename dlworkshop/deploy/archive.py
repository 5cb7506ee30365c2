"""What a `docker save` archive holds, read from its manifest without loading it: the deploy
copies an archive only when the host lacks that exact image (same tag is not enough after a rebuild)."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

from dlworkshop.errors import ConfigError


def archive_images(path: Path) -> dict[str, str]:
    """Tag -> image ID (`sha256:...`) of each image in the archive (Docker's and OCI's layouts)."""
    try:
        with tarfile.open(path) as archive:  # headers only: tarfile seeks over the layers
            member = archive.extractfile(archive.getmember("manifest.json"))
            if member is None:
                raise KeyError("manifest.json is not a file")
            manifest = json.load(member)
    except (OSError, KeyError, tarfile.TarError, json.JSONDecodeError) as exc:
        raise ConfigError(
            f"{path} is not a `docker save` archive ({type(exc).__name__}: {exc})",
            fix="write it with `docker save -o FILE IMAGE:TAG`",
        ) from None
    images = {}
    for entry in manifest:
        # Docker <25: "Config": "<hex>.json"; OCI layout: "Config": "blobs/sha256/<hex>".
        digest = Path(entry["Config"]).name.removesuffix(".json")
        for tag in entry.get("RepoTags") or []:
            images[tag] = f"sha256:{digest}"
    return images


def archive_image_id(path: Path, reference: str) -> str:
    images = archive_images(path)
    if reference not in images:
        held = ", ".join(sorted(images)) or "no tagged image"
        raise ConfigError(
            f"{path} does not hold {reference} (it holds {held})",
            fix="save the image under the name and tag workshop.yaml gives, or correct the name",
        )
    return images[reference]
