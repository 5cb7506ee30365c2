"""The settings model: `workshop.yaml` read once, validated, and handed to every other part.

- `model`: `Settings`, the sections together, and the files they name;
- `workshop`, `learner`, `gpu`, `hub`, `clusters`: the sections, one module per group;
- `units`: sizes and fractions as workshop.yaml writes them; `base`: what every section shares;
- `support`: what each engine refuses (a table the engine registers);
- `loading`: which file, the embedded default, and every problem reported at its line.
"""

from dlworkshop.settings.base import AbsolutePath, ConfigPath, StrictModel
from dlworkshop.settings.clusters import (
    MIG_PROFILE,
    NVIDIA_RESOURCE,
    SLURM_NAME,
    SLURM_TIME,
    Kubernetes,
    KubernetesIngress,
    KubernetesRequests,
    KubernetesToleration,
    Slurm,
    SlurmAccounts,
    SlurmNode,
)
from dlworkshop.settings.gpu import GPU
from dlworkshop.settings.hub import TLS, Culling, Hub, Prewarm
from dlworkshop.settings.learner import ExtraMount, Image, Resources
from dlworkshop.settings.loading import (
    CONFIG_ENV,
    DEFAULT_CONFIG_NAME,
    DEFAULT_SETTINGS_YAML,
    find_config,
    load_settings,
    parse_settings,
)
from dlworkshop.settings.model import Settings, missing_files, named_files
from dlworkshop.settings.units import ByteSize, format_bytes, parse_bytes, parse_share
from dlworkshop.settings.workshop import Auth, GitHubAuth, Learners, WorkshopInfo

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_CONFIG_NAME",
    "DEFAULT_SETTINGS_YAML",
    "GPU",
    "MIG_PROFILE",
    "NVIDIA_RESOURCE",
    "SLURM_NAME",
    "SLURM_TIME",
    "TLS",
    "AbsolutePath",
    "Auth",
    "ByteSize",
    "ConfigPath",
    "Culling",
    "ExtraMount",
    "GitHubAuth",
    "Hub",
    "Image",
    "Kubernetes",
    "KubernetesIngress",
    "KubernetesRequests",
    "KubernetesToleration",
    "Learners",
    "Prewarm",
    "Resources",
    "Settings",
    "Slurm",
    "SlurmAccounts",
    "SlurmNode",
    "StrictModel",
    "WorkshopInfo",
    "find_config",
    "format_bytes",
    "load_settings",
    "missing_files",
    "named_files",
    "parse_bytes",
    "parse_settings",
    "parse_share",
]
