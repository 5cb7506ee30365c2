"""The hub: where it listens, its TLS, how long a start may take, the culler and pre-warming, and
the site's own JupyterHub configuration."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from dlworkshop import contract
from dlworkshop.settings.base import ConfigPath, StrictModel


class Culling(StrictModel):
    idle_timeout: int = Field(default=3600, ge=60, description="Seconds idle before a server is stopped.")
    every: int = Field(default=300, ge=10, description="Seconds between culler sweeps.")
    max_age: int = Field(default=0, ge=0, description="Stop servers older than this (0: never).")


class TLS(StrictModel):
    mode: Literal["none", "self-signed", "letsencrypt", "files"] = "none"
    domain: str | None = Field(default=None, description="The name (or IP address) learners open.")
    port: int = Field(
        default=443,
        ge=1,
        le=65535,
        description="Where the TLS endpoint listens (`dlworkshop up`; a deploy serves 443).",
    )
    email: str | None = None
    certificate: ConfigPath | None = None
    key: ConfigPath | None = None
    acme_directory: str = "https://acme-v02.api.letsencrypt.org/directory"

    @model_validator(mode="after")
    def _mode_needs_its_fields(self) -> TLS:
        if self.mode == "letsencrypt" and not (self.domain and self.email):
            raise ValueError("mode letsencrypt needs a public domain and a contact email")
        if self.mode == "files" and not (self.certificate and self.key):
            raise ValueError("mode files needs certificate and key paths")
        return self


def site_config_problem(folder: Path) -> None:
    """hub.extra_config must be a folder this user can read, holding *.py files they can read
    (other files are left alone, as TLJH's jupyterhub_config.d does)."""
    try:
        is_folder = folder.is_dir()
    except PermissionError:
        is_folder = True  # its parent is closed to this user: said below
    if not is_folder:
        raise ValueError(
            f"{folder} does not exist or is not a folder; name a folder of *.py JupyterHub configuration files"
        )
    if not os.access(folder, os.R_OK | os.X_OK):
        raise ValueError(f"permission denied reading the folder {folder}; make it readable by this user")
    files = contract.site_config_files(folder)
    if not files:
        raise ValueError(f"{folder} holds no *.py file; put the site's JupyterHub configuration there")
    unreadable = [path.name for path in files if not os.access(path, os.R_OK)]
    if unreadable:
        raise ValueError(
            f"permission denied reading {', '.join(unreadable)} in {folder}; make them readable by this user"
        )


class Hub(StrictModel):
    backend: Literal["docker", "kubernetes", "slurm"] = Field(
        default="docker", description="The engine that runs learners' servers (hub/backends/)."
    )
    image: str = "dlworkshop/hub:latest"
    bind: str = Field(default="127.0.0.1", description="Address the hub's public port listens on.")
    port: int = Field(default=8000, ge=1, le=65535)
    public_url: str | None = Field(default=None, description="URL learners open; derived when empty.")
    network: str = "dlworkshop"
    data_volume: str = "dlworkshop-hub-data"
    container_name: str = "dlworkshop-hub"
    image_archive: ConfigPath | None = Field(
        default=None,
        description="A `docker save` file of the hub image, copied to the host when image.source is archive.",
    )
    start_timeout: int = Field(
        default=600,
        ge=30,
        description="Seconds a learner's server may take once admitted (not while queued).",
    )
    start_capacity: Annotated[int, Field(ge=1)] | Literal["auto"] = Field(
        default="auto",
        description="Learner server starts run at once; the rest queue in order. auto: from the host's cores and memory.",
    )
    tls: TLS = TLS()
    extra_config: ConfigPath | None = Field(
        default=None,
        description="A folder of the site's own JupyterHub configuration (jupyterhub_config.d): its "
        "*.py files run after the workshop's, in name order, on the Docker and Slurm hubs.",
    )

    @field_validator("extra_config")
    @classmethod
    def _a_readable_folder_of_python_files(cls, folder: Path | None) -> Path | None:
        if folder is not None:
            site_config_problem(folder)
        return folder

    @property
    def url(self) -> str:
        """What learners open (one rule: dlworkshop.contract.hub_url)."""
        return contract.hub_url(
            self.public_url, self.tls.domain, self.tls.mode != "none", self.bind, self.port, self.tls.port
        )

    @property
    def local_only(self) -> bool:
        """Whether the hub's port listens on this machine's loopback only."""
        return contract.is_loopback(self.bind)


class Prewarm(StrictModel):
    """Servers started ahead of workshop.start, so the 09:00 room finds them running."""

    minutes_before: int = Field(
        default=20, ge=1, le=24 * 60, description="The hub pre-warms this long before workshop.start."
    )
    seats: Annotated[int, Field(ge=0)] | Literal["auto"] = Field(
        default="auto",
        description="shared-code mode: ready servers handed out at first login (auto: the learners "
        "expected at once). accounts and github modes pre-warm the named learners instead.",
    )
    spares: int = Field(
        default=0,
        ge=0,
        description="shared-code mode: ready servers kept for first logins from pre-warm time until "
        "workshop.end (seats nobody has taken count), refilled after the rush; culled at workshop.end.",
    )
    refill_seconds: int = Field(
        default=30, ge=1, description="Seconds at least between two spare starts (one at a time)."
    )
