"""`dlworkshop image ...`: build the learner image and its offline base, regenerate the locks."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import typer
from rich.console import Console

from dlworkshop.cli import command_group

image_app = command_group("image", "The learner image: offline base, hash-locked build, locks.")
console = Console(soft_wrap=True)


@image_app.command("base")
def base_command(
    tag: str = typer.Option("dlworkshop/base:bookworm", "--tag", help="Tag of the base image."),
    mirror: str = typer.Option("http://deb.debian.org/debian", "--mirror", help="Debian package mirror."),
    force: bool = typer.Option(False, "--force", help="Rebuild even if the recipe is unchanged."),
) -> None:
    """Build a Debian base image with Python from a package mirror, with no registry (debootstrap)."""
    from dlworkshop.image.base import build_base

    build_base(tag=tag, mirror=mirror, force=force, console=console)


@image_app.command("build")
def build_command(
    variant: str = typer.Option("cpu", "--variant", help="cpu or cuda."),
    base_image: str | None = typer.Option(
        None, "--base-image", help="Base image (default: the Dockerfile's)."
    ),
    ca_bundle: str = typer.Option(
        "auto",
        "--ca-bundle",
        help="CAs every build step (apt, pip, npm) and data download trusts: auto (this host's bundle), "
        "off (each tool's own), or a PEM file.",
    ),
    data_mirror: str | None = typer.Option(None, "--data-mirror", help="Dataset mirror: folder or URL."),
    registry: Path | None = typer.Option(None, "--registry", help="Dataset registry to fetch by."),
    tag: str | None = typer.Option(None, "--tag", help="Image tag (default: dlworkshop/learner:<variant>)."),
) -> None:
    """Build the learner image: locked packages, verified data, lessons, start hooks."""
    from dlworkshop.errors import WorkshopError
    from dlworkshop.image.build import Variant, build_learner_image
    from dlworkshop.image.ca_bundle import parse_ca_bundle_option

    if variant not in ("cpu", "cuda"):
        raise WorkshopError(f"unknown variant {variant!r}", fix="use --variant cpu or --variant cuda")
    build_learner_image(
        tag or f"dlworkshop/learner:{variant}",
        cast(Variant, variant),
        base_image,
        parse_ca_bundle_option(ca_bundle),
        data_mirror,
        registry,
        console=console,
    )


@image_app.command("lock")
def lock_command(
    upgrade: bool = typer.Option(False, "--upgrade", help="Move to the newest versions allowed."),
) -> None:
    """Regenerate image/requirements-{cpu,cuda}.lock, hub/requirements.lock and binder/ (uv, hashes)."""
    from dlworkshop.image.lock import lock, lock_hub, write_binder_requirements

    for variant in ("cpu", "cuda"):
        console.print(f"locked {lock(variant, upgrade)}")
    console.print(f"locked {lock_hub(upgrade)}")
    console.print(f"wrote {write_binder_requirements()}")
