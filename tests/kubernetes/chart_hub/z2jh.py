"""A stand-in for the Zero to JupyterHub chart's `z2jh` helper module (jupyterhub/files/hub/z2jh.py),
written from its documented interface for tests/kubernetes/test_hub_under_the_chart.py: the same
functions, reading the same files the chart mounts into the hub pod (its Secret's `values.yaml` and
keys, its ConfigMap's resource names), from the folder this file is in rather than from
/usr/local/etc/jupyterhub, so that the tests can also run it outside the hub image.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
_UNSET = object()


@cache
def _values() -> dict[str, Any]:
    """The chart's values (its defaults merged with the installed values), as the Secret holds them."""
    return yaml.safe_load((HERE / "secret" / "values.yaml").read_text())


def get_config(key: str, default: Any = None) -> Any:
    node: Any = _values()
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def get_secret_value(key: str, default: Any = _UNSET) -> Any:
    path = HERE / "secret" / key
    if path.is_file():
        return path.read_text()
    if default is not _UNSET:
        return default
    raise KeyError(f"{key} is not in the chart's Secret")


def get_name(name: str) -> str:
    """A resource's full name, as the chart's ConfigMap lists it."""
    return (HERE / "config" / name).read_text()


def get_name_env(name: str, suffix: str = "") -> str:
    """The environment variable Kubernetes sets for a Service (e.g. PROXY_API_SERVICE_PORT)."""
    return os.environ[(get_name(name) + suffix).upper().replace("-", "_")]


def set_config_if_not_none(parent: Any, name: str, key: str) -> None:
    value = get_config(key)
    if value is not None:
        setattr(parent, name, value)
