"""Every engine's table of what it does not support, registered with the settings model
(dlworkshop/settings/support.py). The settings import no engine; each place that loads settings
imports this module first: the CLI (dlworkshop/cli/__init__.py), the hub (hub/__init__.py), the tests."""

from __future__ import annotations

from dlworkshop.kubernetes import supported as kubernetes_support
from dlworkshop.slurm import supported as slurm_support

REGISTERED = (kubernetes_support, slurm_support)
