"""`dlworkshop share`'s checks and report, the same for the hub on this machine (local_hub.share)
and a deployed one (deploy/share.py): only the copying differs."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from dlworkshop.errors import ConfigError, WorkshopError
from dlworkshop.settings import Settings


def check_shareable(settings: Settings, paths: list[Path], bring_up: str) -> None:
    """Refuse before copying anything: the hub mounts no shared folder, or a path is missing.
    `bring_up`: the command that applies workshop.yaml to this hub (`dlworkshop up`, `... deploy`)."""
    if not settings.mounts_shared_folder:
        raise ConfigError(
            "resources.shared_folder is off for this hub",
            fix=f"set resources.shared_folder: true and run `{bring_up}` again",
        )
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise WorkshopError(f"{', '.join(missing)}: no such file or folder", fix="check the paths")


def announce_shared(paths: list[Path], console: Console) -> list[str]:
    """Say where learners find what was shared; returns the names (each under its own)."""
    names = [p.name for p in paths]
    for name in names:
        console.print(f"shared {name}: learners see ~/work/shared/{name}", highlight=False)
    return names
