"""The pinned Zero to JupyterHub chart's defaults and schema (package data under chart/<version>/,
refreshed by scripts/refresh-z2jh-chart), and check (a): rendered values merged onto the chart's
defaults, as Helm merges them, validate against the chart's values.schema.yaml."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from dlworkshop.errors import ConfigError

CHART_DATA = Path(__file__).resolve().parent / "chart"
HELM_REPOSITORY = "https://hub.jupyter.org/helm-chart/"
CHARTPRESS_PLACEHOLDER = "set-by-chartpress"


@dataclass(frozen=True)
class Chart:
    version: str
    folder: Path

    def _yaml(self, name: str) -> Any:
        return yaml.safe_load((self.folder / name).read_text(encoding="utf-8"))

    @cached_property
    def defaults(self) -> dict[str, Any]:
        """values.yaml as the published chart has it: chartpress writes the chart's version where
        git has the placeholder `set-by-chartpress` (the tags of the chart's own images)."""

        def published(node: Any) -> Any:
            if isinstance(node, dict):
                return {key: published(value) for key, value in node.items()}
            if isinstance(node, list):
                return [published(item) for item in node]
            return self.version if node == CHARTPRESS_PLACEHOLDER else node

        return published(self._yaml("values.yaml"))

    @cached_property
    def schema(self) -> dict[str, Any]:
        return self._yaml("values.schema.yaml")

    @cached_property
    def source(self) -> dict[str, str]:
        """The commit and the versions the chart pins (source.yaml)."""
        return self._yaml("source.yaml")

    @property
    def kubespawner_version(self) -> str:
        return self.source["jupyterhub-kubespawner"]

    @property
    def oldest_kubernetes(self) -> tuple[int, int]:
        """The oldest Kubernetes the chart installs on (Chart.yaml's kubeVersion, `>=1.28.0-0`)."""
        match = re.search(r">=\s*v?(\d+)\.(\d+)", self.source["kube_version"])
        if not match:
            raise ValueError(
                f"chart {self.version}: kube_version {self.source['kube_version']!r} has no floor"
            )
        return int(match.group(1)), int(match.group(2))


def available_versions() -> list[str]:
    return sorted(
        (folder.name for folder in CHART_DATA.iterdir() if (folder / "values.schema.yaml").is_file()),
        key=lambda version: [int(part) if part.isdigit() else part for part in re.split(r"[.-]", version)],
    )


def load_chart(version: str) -> Chart:
    folder = CHART_DATA / version
    if not (folder / "values.schema.yaml").is_file():
        known = ", ".join(available_versions())
        raise ConfigError(
            f"chart version {version} has not been checked by this dlworkshop (checked: {known})",
            problems=[f"kubernetes.chart_version (or --chart-version): {version} is not one of {known}"],
            fix="use a checked version, or add one with scripts/refresh-z2jh-chart and run the tests",
        )
    return Chart(version=version, folder=folder)


def merge_values(defaults: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Helm's merge of a values file onto the chart's defaults: mappings merge key by key, anything
    else replaces, and a null in the file deletes the default."""
    merged = copy.deepcopy(defaults)
    for key, value in overrides.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_values(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def json_path(parts: Any) -> str:
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(top level)"


def schema_problems(values: dict[str, Any], chart: Chart) -> list[str]:
    """Check (a): every way the values break the chart's schema, after Helm's merge."""
    from jsonschema.validators import validator_for

    schema = chart.schema
    validator = validator_for(schema)(schema)
    merged = merge_values(chart.defaults, values)
    errors = sorted(validator.iter_errors(merged), key=lambda error: list(map(str, error.absolute_path)))
    return [f"{json_path(error.absolute_path)}: {error.message}" for error in errors]
