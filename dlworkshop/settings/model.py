"""The settings model: `workshop.yaml` read once, validated, and handed to every other part.

Data flows one way: workshop.yaml -> Settings -> {image build args, hub config, ansible vars,
smoke-test budgets}. Nothing else reads the YAML file.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from dlworkshop.settings.base import StrictModel
from dlworkshop.settings.clusters import Kubernetes, Slurm
from dlworkshop.settings.hub import Culling, Hub, Prewarm
from dlworkshop.settings.learner import Image, Resources
from dlworkshop.settings.support import Problem, unsupported_settings
from dlworkshop.settings.workshop import Auth, Learners, WorkshopInfo


class Settings(StrictModel):
    workshop: WorkshopInfo = WorkshopInfo()
    learners: Learners = Learners(count=4)
    auth: Auth
    image: Image = Image()
    resources: Resources = Resources()
    culling: Culling = Culling()
    hub: Hub = Hub()
    prewarm: Prewarm = Prewarm()
    kubernetes: Kubernetes = Kubernetes()
    slurm: Slurm = Slurm()

    @model_validator(mode="after")
    def _the_backend_can_run_these_settings(self) -> Settings:
        """Checks that need two sections; each problem is reported at the key it names."""
        problems: list[Problem] = []
        if self.hub.backend != "slurm" and "slurm" in self.model_fields_set:
            problems.append((("slurm",), "only hub.backend slurm reads this section"))
        if self.hub.backend != "kubernetes" and "kubernetes" in self.model_fields_set:
            problems.append((("kubernetes",), "only hub.backend kubernetes reads this section"))
        # Each engine's own table (registered by the engine, dlworkshop/settings/support.py).
        problems += unsupported_settings(self)
        if problems:
            raise ValidationError.from_exception_data(
                "Settings",
                [
                    InitErrorDetails(type=PydanticCustomError("value_error", message), loc=loc, input=None)
                    for loc, message in problems
                ],
            )
        return self

    @property
    def prewarm_seats(self) -> int:
        """Seats pre-warmed in shared-code mode (0 where learners are known by name)."""
        if self.auth.mode != "shared-code" or self.learners.names:
            return 0
        seats = self.prewarm.seats
        return self.learners.concurrent if seats == "auto" else seats

    @property
    def mounts_shared_folder(self) -> bool:
        """resources.shared_folder, else on where the backend can mount one (Docker)."""
        chosen = self.resources.shared_folder
        return chosen if chosen is not None else self.hub.backend == "docker"

    @model_validator(mode="after")
    def _spares_have_seats_and_a_window(self) -> Settings:
        """Spares are handed out like seats (shared-code mode) and kept between two known times."""
        if not self.prewarm.spares:
            return self
        problems = []
        if self.auth.mode != "shared-code" or self.learners.names:
            problems.append(
                "spares are handed out at a first login in shared-code mode (like seats); with "
                "accounts, github or learners.names the hub pre-warms every named learner: remove it"
            )
        if self.workshop.start is None or self.workshop.end is None:
            problems.append(
                "spares are kept from pre-warm time until the workshop ends: set workshop.start "
                "and workshop.end"
            )
        if problems:
            raise ValidationError.from_exception_data(
                "Settings",
                [
                    InitErrorDetails(
                        type=PydanticCustomError("value_error", message),
                        loc=("prewarm", "spares"),
                        input=None,
                    )
                    for message in problems
                ],
            )
        return self

    @model_validator(mode="after")
    def _prewarmed_servers_wait_less_than_the_culler(self) -> Settings:
        if self.workshop.start and self.prewarm.minutes_before * 60 >= self.culling.idle_timeout:
            raise ValueError(
                f"prewarm.minutes_before ({self.prewarm.minutes_before}) must be shorter than "
                f"culling.idle_timeout ({self.culling.idle_timeout} s), or the culler stops the "
                "pre-warmed servers before the learners arrive"
            )
        return self


# Why a named file may be missing, and how to make it.
_MAKE_FILE = {"auth.accounts_file": "; run `dlworkshop accounts generate N` and set auth.accounts_file"}


def named_files(settings: Settings) -> dict[str, Path]:
    """The files workshop.yaml names for the modes it uses, by key (relative paths taken from the
    file's folder): what the machine that installs or renders the hub must read."""
    tls, image = settings.hub.tls, settings.image
    candidates = {
        "auth.accounts_file": settings.auth.accounts_file if settings.auth.mode == "accounts" else None,
        "hub.tls.certificate": tls.certificate if tls.mode == "files" else None,
        "hub.tls.key": tls.key if tls.mode == "files" else None,
        "image.archive": image.archive if image.source == "archive" else None,
        "hub.image_archive": settings.hub.image_archive if image.source == "archive" else None,
    }
    return {key: path for key, path in candidates.items() if path is not None}


def missing_files(settings: Settings, keys: tuple[str, ...] | None = None) -> list[str]:
    """One problem line per named file (of `keys`, default all) that this machine lacks."""
    return [
        f"{key}: {path} does not exist on this machine{_MAKE_FILE.get(key, '')}"
        for key, path in named_files(settings).items()
        if (keys is None or key in keys) and not path.is_file()
    ]
