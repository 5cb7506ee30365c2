"""What of workshop.yaml an engine cannot take, refused when the settings load.

Each engine owns a table of what it does not support and registers it here (`register`); the
settings model asks through one function, `unsupported_settings`, and imports no engine, so no
import circle hides behind it. `dlworkshop/engines.py` registers every engine's table: each place
that loads settings (the CLI, the hub, the tests) imports it first.

Many settings describe a Docker host (its network, its volumes, its loop-device work folders). On
Kubernetes or Slurm each is refused at the key it names, saying what stands for it on that engine,
so nothing the admin asked for is silently dropped. Each engine's module
(dlworkshop/kubernetes/supported.py, dlworkshop/slurm/supported.py) gives its reasons in a
`DockerOnly` and adds its own checks; the refusals common to both are made here, once.

A key that only the Docker backend reads is refused when workshop.yaml sets it; its default is
harmless (it describes nothing the admin asked for).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import BaseModel

    from dlworkshop.settings import Settings

# A refusal: the key's path in workshop.yaml, and why (with the fix).
Problem = tuple[tuple[str, ...], str]
# An engine's table, asked with the whole settings: every refusal, each at its key.
SupportTable = Callable[["Settings"], list[Problem]]

_TABLES: dict[str, SupportTable] = {}


def register(backend: str, table: SupportTable) -> None:
    """An engine's table of what it does not support, for `hub.backend: <backend>`."""
    _TABLES[backend] = table


def unsupported_settings(settings: Settings) -> list[Problem]:
    """What the chosen engine refuses, each at its key. An engine whose table nobody registered is a
    programming error, never a silent pass."""
    backend = settings.hub.backend
    if backend not in _TABLES:
        raise RuntimeError(
            f"no table of what hub.backend {backend} does not support is registered: "
            "import dlworkshop.engines before loading settings"
        )
    return _TABLES[backend](settings)


def docker_problems(settings: Settings) -> list[Problem]:
    """The Docker backend's own: the settings' sections describe a Docker host, so it refuses little."""
    gpu = settings.resources.gpu
    if gpu.policy == "mig" and not gpu.mig_devices:
        return [
            (
                ("resources", "gpu", "mig_devices"),
                "policy mig needs the MIG device UUIDs (nvidia-smi -L lists them)",
            )
        ]
    return []


register("docker", docker_problems)


@dataclass(frozen=True)
class DockerOnly:
    """What stands, on one engine, for the settings only the Docker backend reads."""

    backend: str
    # Keys refused whenever workshop.yaml sets them.
    keys: Mapping[tuple[str, ...], str]
    # Refused when they ask for something (a size, a mount), set or by default.
    disk: str
    tmp: str
    extra_mounts: str
    # How a folder shared with every learner would be made on this engine (not set up yet).
    shared_folder: str
    # Why learner images cannot come from a `docker save` archive here, and what to use.
    image_archive: str

    def only_docker(self, instead: str) -> str:
        return f"only the Docker backend reads it: {instead}; remove it for hub.backend {self.backend}"


def explicitly_set(model: BaseModel, path: tuple[str, ...]) -> bool:
    """Whether workshop.yaml itself wrote the key at `path` (not a default)."""
    for name in path[:-1]:
        if name not in model.model_fields_set:
            return False
        model = getattr(model, name)
    return path[-1] in model.model_fields_set


def docker_only_problems(settings: Settings, docker_only: DockerOnly) -> list[Problem]:
    problems: list[Problem] = [
        (path, docker_only.only_docker(instead))
        for path, instead in docker_only.keys.items()
        if explicitly_set(settings, path)
    ]
    if settings.image.source == "archive":
        problems.append((("image", "source"), docker_only.image_archive))
    resources = settings.resources
    # `disk: null`, no tmp size and no mounts ask for nothing Docker-only.
    if resources.disk is not None and explicitly_set(settings, ("resources", "disk")):
        problems.append((("resources", "disk"), docker_only.only_docker(docker_only.disk)))
    if resources.tmp is not None:
        problems.append((("resources", "tmp"), docker_only.only_docker(docker_only.tmp)))
    if resources.extra_mounts:
        problems.append((("resources", "extra_mounts"), docker_only.only_docker(docker_only.extra_mounts)))
    if resources.shared_folder:
        problems.append(
            (
                ("resources", "shared_folder"),
                f"a shared folder on a cluster {docker_only.shared_folder}, which this project does not "
                f"set up yet; remove it (or set it to false) for hub.backend {docker_only.backend}",
            )
        )
    return problems
