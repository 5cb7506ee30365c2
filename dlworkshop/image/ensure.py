"""The images a hub needs, made present on this machine: pulled, loaded from an archive, or built
(with an offline base where no registry answers). Used by `dlworkshop up` and by the deploy's
`image.source: build`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from dlworkshop.errors import WorkshopError
from dlworkshop.image.docker import image_present
from dlworkshop.settings import Settings

if TYPE_CHECKING:
    from docker import DockerClient


def ensure_base_image(client: DockerClient, reference: str, console: Console) -> str:
    """The base image: present, pulled from a registry, or (no registry) built with debootstrap."""
    if image_present(client, reference):
        return reference
    with console.status(f"pulling {reference}"):
        try:
            client.images.pull(reference)
            return reference
        except Exception:
            console.print(f"{reference} cannot be pulled (no registry?): building an offline Debian base")
    from dlworkshop.image.base import build_base

    return build_base(console=console)


def _pull(client: DockerClient, reference: str, console: Console) -> None:
    import docker

    with console.status(f"pulling {reference}"):
        try:
            client.images.pull(reference)
        except docker.errors.APIError as exc:
            raise WorkshopError(
                f"cannot pull {reference}: {exc.explanation or exc}",
                fix="check the registry and the image name, or use image.source: build or archive",
            ) from None


def _load(client: DockerClient, archive: Path, reference: str, console: Console) -> None:
    if not archive.is_file():
        raise WorkshopError(
            f"image.archive {archive} does not exist", fix="give the path of a `docker save` file"
        )
    with console.status(f"loading {archive}"), archive.open("rb") as stream:
        client.images.load(stream)  # streamed: archives of TensorFlow images are gigabytes
    if not image_present(client, reference):
        raise WorkshopError(
            f"{archive} does not hold {reference}", fix="set image.name and image.tag to the archived image"
        )


def ensure_images(client: DockerClient, settings: Settings, console: Console, rebuild: bool = False) -> None:
    from dlworkshop.image.build import build_hub_image, build_learner_image

    image = settings.image
    learner_missing = rebuild or not image_present(client, image.reference)
    hub_missing = rebuild or not image_present(client, settings.hub.image)
    if image.source == "pull" and learner_missing:
        _pull(client, image.reference, console)
        learner_missing = False
    if image.source == "archive" and learner_missing:
        assert image.archive is not None  # the settings model requires it for this source
        _load(client, image.archive, image.reference, console)
        learner_missing = False
    if image.source == "archive" and hub_missing and settings.hub.image_archive is not None:
        # The hub image's `docker save` file, as the deploy copies it to its host.
        _load(client, settings.hub.image_archive, settings.hub.image, console)
        hub_missing = False
    if not (learner_missing or hub_missing):
        return
    base = ensure_base_image(client, image.base_image, console)
    if learner_missing:
        build_learner_image(
            image.reference, image.variant, base, image.ca_bundle, image.data_mirror, console=console
        )
    if hub_missing:
        build_hub_image(settings.hub.image, base, image.ca_bundle, console=console)
