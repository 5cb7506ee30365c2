"""The engines that run learners' servers, one module each, chosen by `hub.backend`.

Imported lazily: the hub loads only the engine it runs (and its spawner package), so the rest of
`hub/` imports no engine at all.
"""

from __future__ import annotations

import importlib

from dlworkshop.settings import Settings
from hub.backends.base import Backend, LearnerServer

__all__ = ["BACKENDS", "Backend", "LearnerServer", "backend_for"]

# hub.backend -> "module:class"
BACKENDS = {
    "docker": "hub.backends.docker:DockerBackend",
    "kubernetes": "hub.backends.kubernetes:KubernetesBackend",
    "slurm": "hub.backends.slurm:SlurmBackend",
}


def backend_for(settings: Settings) -> Backend:
    module_name, _, class_name = BACKENDS[settings.hub.backend].partition(":")
    backend_class: type[Backend] = getattr(importlib.import_module(module_name), class_name)
    return backend_class(settings)
