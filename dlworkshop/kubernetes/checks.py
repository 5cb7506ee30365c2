"""Check (d): what neither the chart's schema nor Kubernetes' OpenAPI schema catches.

- The chart's schema only says `profileList` is an array, and KubeSpawner applies a profile's
  `kubespawner_override` with setattr when a learner's server starts: a misspelt option becomes a
  plain attribute, silently, or (a mapping) fails every learner's start on the day.
- `nvidia.com/gpus` is a valid extended-resource name to both schemas; no node advertises it, so
  the pod waits in Pending for ever.
- Placeholders sized without the GPU hold room on CPU nodes; an image puller without the GPU
  pool's tolerations skips the GPU nodes.
"""

from __future__ import annotations

import difflib
import re
from functools import cache
from typing import Any

from dlworkshop.settings import NVIDIA_RESOURCE

PROFILE_KEYS = frozenset(
    {"display_name", "slug", "description", "default", "kubespawner_override", "profile_options"}
)
OPTION_KEYS = frozenset({"display_name", "choices", "unlisted_choice"})
CHOICE_KEYS = frozenset({"display_name", "description", "default", "kubespawner_override"})
# Resource names Kubernetes itself defines; any other name is an extended resource.
NATIVE_RESOURCE = re.compile(r"cpu|memory|ephemeral-storage|hugepages-\w+")
# hub.config sections (the chart loads them as-is into the hub's config) checked against the
# pinned hub's classes: a misspelt option there is set nowhere, silently.
CONFIG_SECTIONS = {
    "KubeSpawner": "kubespawner:KubeSpawner",
    "Spawner": "kubespawner:KubeSpawner",
    "JupyterHub": "jupyterhub.app:JupyterHub",
    "Authenticator": "jupyterhub.auth:Authenticator",
}


@cache
def configurable_options(where: str) -> frozenset[str]:
    """The options (configurable traits) of a class of the hub this chart runs, `module:Class`."""
    import importlib

    module, _, name = where.partition(":")
    return frozenset(getattr(importlib.import_module(module), name).class_trait_names(config=True))


def kubespawner_options() -> frozenset[str]:
    return configurable_options(CONFIG_SECTIONS["KubeSpawner"])


def _unknown(key: str, known: frozenset[str], what: str) -> str:
    close = difflib.get_close_matches(key, sorted(known), n=1)
    hint = f"; did you mean {close[0]}?" if close else ""
    return f"{what} has no option {key!r}{hint}"


def _resource_problems(where: str, resources: dict[str, Any]) -> list[str]:
    problems = []
    for name, amount in resources.items():
        if NATIVE_RESOURCE.fullmatch(str(name)):
            continue
        if not NVIDIA_RESOURCE.fullmatch(str(name)):
            problems.append(
                f"{where}.{name}: no node advertises this resource (NVIDIA's device plugin offers "
                "nvidia.com/gpu, nvidia.com/gpu.shared and nvidia.com/mig-<profile>); the pod would stay Pending"
            )
        elif not str(amount).isdigit() or int(str(amount)) < 1:
            problems.append(f"{where}.{name}: {amount!r} is not a whole number of devices")
    return problems


def override_problems(where: str, override: Any) -> list[str]:
    """A kubespawner_override: every key a KubeSpawner option, every extended resource a real one."""
    if not isinstance(override, dict):
        return [f"{where}: must be a mapping of KubeSpawner options"]
    options = kubespawner_options()
    problems = [
        f"{where}.{key}: {_unknown(key, options, 'KubeSpawner')}" for key in override if key not in options
    ]
    for key in ("extra_resource_limits", "extra_resource_guarantees"):
        if isinstance(override.get(key), dict):
            problems.extend(_resource_problems(f"{where}.{key}", override[key]))
    return problems


def _keys_problems(where: str, entry: Any, known: frozenset[str], what: str) -> list[str]:
    if not isinstance(entry, dict):
        return [f"{where}: must be a mapping"]
    return [f"{where}.{key}: {_unknown(key, known, what)}" for key in entry if key not in known]


def profile_problems(index: int, profile: Any) -> list[str]:
    where = f"singleuser.profileList[{index}]"
    problems = _keys_problems(where, profile, PROFILE_KEYS, "a profile")
    if problems and not isinstance(profile, dict):
        return problems
    problems += override_problems(f"{where}.kubespawner_override", profile.get("kubespawner_override", {}))
    for option_name, option in (profile.get("profile_options") or {}).items():
        option_where = f"{where}.profile_options.{option_name}"
        problems += _keys_problems(option_where, option, OPTION_KEYS, "a profile option")
        if not isinstance(option, dict):
            continue
        for choice_name, choice in (option.get("choices") or {}).items():
            choice_where = f"{option_where}.choices.{choice_name}"
            problems += _keys_problems(choice_where, choice, CHOICE_KEYS, "a choice")
            if isinstance(choice, dict):
                problems += override_problems(
                    f"{choice_where}.kubespawner_override", choice.get("kubespawner_override", {})
                )
        unlisted = option.get("unlisted_choice")
        if isinstance(unlisted, dict) and "kubespawner_override" in unlisted:
            problems += override_problems(
                f"{option_where}.unlisted_choice.kubespawner_override", unlisted["kubespawner_override"]
            )
    return problems


def _extended(resources: Any) -> dict[str, str]:
    if not isinstance(resources, dict):
        return {}
    return {
        str(name): str(amount)
        for name, amount in resources.items()
        if not NATIVE_RESOURCE.fullmatch(str(name))
    }


def _default_profile(profiles: list[Any]) -> dict[str, Any] | None:
    mappings = [profile for profile in profiles if isinstance(profile, dict)]
    return next(
        (profile for profile in mappings if profile.get("default")), mappings[0] if mappings else None
    )


def placement_problems(values: dict[str, Any]) -> list[str]:
    """Placeholders hold the room a learner needs (GPU included); pullers reach every GPU node."""
    singleuser = values.get("singleuser") or {}
    profile = _default_profile(singleuser.get("profileList") or [])
    override = (profile or {}).get("kubespawner_override") or {}
    wanted = {
        **_extended((singleuser.get("extraResource") or {}).get("limits")),
        **_extended(override.get("extra_resource_limits")),
    }
    problems = []
    placeholder = (values.get("scheduling") or {}).get("userPlaceholder") or {}
    if placeholder.get("enabled", True) and placeholder.get("replicas"):
        held = _extended(((placeholder.get("resources") or {}).get("requests")) or {})
        for name, amount in wanted.items():
            if held.get(name) != amount:
                problems.append(
                    f"scheduling.userPlaceholder.resources.requests.{name}: a learner's pod asks for {amount}, "
                    f"a placeholder for {held.get(name, 'none')}; placeholders would hold room on the wrong nodes"
                )
    puller_tolerations = [
        *(singleuser.get("extraTolerations") or []),
        *((values.get("prePuller") or {}).get("extraTolerations") or []),
    ]
    for toleration in override.get("tolerations") or []:
        if toleration not in puller_tolerations:
            problems.append(
                f"singleuser.profileList: the profile tolerates {toleration} but the image pullers do not; "
                "put it in singleuser.extraTolerations so the image reaches those nodes"
            )
    return problems


def values_problems(values: dict[str, Any]) -> list[str]:
    """Check (d) on rendered (or hand-edited) values; an empty list when all is well."""
    singleuser = values.get("singleuser") or {}
    problems = []
    for index, profile in enumerate(singleuser.get("profileList") or []):
        problems += profile_problems(index, profile)
    config = (values.get("hub") or {}).get("config") or {}
    for section in ("KubeSpawner", "Spawner"):
        if isinstance(config.get(section), dict):
            problems += override_problems(f"hub.config.{section}", config[section])
    for section in ("JupyterHub", "Authenticator"):
        if isinstance(config.get(section), dict):
            known = configurable_options(CONFIG_SECTIONS[section])
            problems += [
                f"hub.config.{section}.{key}: {_unknown(key, known, section)}"
                for key in config[section]
                if key not in known
            ]
    extra_resource = singleuser.get("extraResource") or {}
    for key in ("limits", "guarantees"):
        if isinstance(extra_resource.get(key), dict):
            problems += _resource_problems(f"singleuser.extraResource.{key}", extra_resource[key])
    placeholder_requests = ((values.get("scheduling") or {}).get("userPlaceholder") or {}).get(
        "resources"
    ) or {}
    for key in ("requests", "limits"):
        if isinstance(placeholder_requests.get(key), dict):
            problems += _resource_problems(
                f"scheduling.userPlaceholder.resources.{key}", placeholder_requests[key]
            )
    return problems + placement_problems(values)
