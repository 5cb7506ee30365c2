"""`dlworkshop env ...`: the learner environment on a cluster's shared storage (hub.backend slurm)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from dlworkshop.cli import command_group
from dlworkshop.cli.config import ConfigOption

env_app = command_group(
    "env", "The learner environment on a cluster's shared storage, copied out of the learner image."
)
console = Console(soft_wrap=True)

PrefixOption = typer.Option(
    None, "--prefix", help="Where every compute node sees the environment (default: slurm.env_prefix)."
)
ImageOption = typer.Option(None, "--image", help="The built learner image (default: image.name:image.tag).")


def _prefix_and_image(config: Path | None, prefix: str | None, image: str | None) -> tuple[str, str]:
    from dlworkshop.settings import load_settings

    settings = load_settings(config)
    return prefix or settings.slurm.env_prefix, image or settings.image.reference


@env_app.command("install")
def install_command(
    prefix: str | None = PrefixOption,
    dest: Path | None = typer.Option(
        None, "--dest", help="Where this machine writes it, when it sees the prefix elsewhere (a mount)."
    ),
    image: str | None = ImageOption,
    config: Path | None = ConfigOption,
) -> None:
    """Copy the built learner image's venv, data, lessons and start hook to shared storage."""
    from dlworkshop.slurm.environment import install

    prefix, image = _prefix_and_image(config, prefix, image)
    installed = install(image, prefix, dest, say=console.print)
    console.print(
        f"[green]installed[/] {installed.image} for {installed.prefix}: Python {installed.python}, "
        f"jupyterhub {installed.jupyterhub}, batchspawner {installed.batchspawner}",
        highlight=False,
    )


@env_app.command("pack")
def pack_command(
    out: Path = typer.Option(..., "--out", help="The tar file to write."),
    prefix: str | None = PrefixOption,
    image: str | None = ImageOption,
    config: Path | None = ConfigOption,
) -> None:
    """The same environment as a tar, to unpack at the prefix on the cluster (the deploy does)."""
    from dlworkshop.slurm.environment import pack

    prefix, image = _prefix_and_image(config, prefix, image)
    installed = pack(image, prefix, out.resolve(), say=console.print)
    console.print(f"[green]packed[/] {installed.image} for {installed.prefix} into {out}", highlight=False)
