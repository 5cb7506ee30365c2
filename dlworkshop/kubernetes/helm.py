"""Check (e): Helm itself on the values, through helm-python-sdk (Helm v4's own Go code as a
library, no helm binary): the chart's schema as Helm applies it, `helm lint --strict` for the
oldest Kubernetes the chart supports and a current one, `helm template`, and every object it
renders against Kubernetes' OpenAPI schema (kubernetes-validate, strict) for both versions.

Helm runs on the chart an operator installs, given as a folder or the `.tgz` that
`helm pull jupyterhub --repo https://hub.jupyter.org/helm-chart/ --version <version>` writes
(--chart, or $DLWORKSHOP_Z2JH_CHART), else on the released chart kept in this package beside its
data files, chart/<version>/jupyterhub (reproduced from the chart's tag by
scripts/refresh-z2jh-chart as its release makes it; its README says how).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dlworkshop.errors import ConfigError, WorkshopError
from dlworkshop.kubernetes.chart import CHART_DATA, HELM_REPOSITORY, Chart
from dlworkshop.kubernetes.manifests import NAMESPACE, RELEASE, kubernetes_versions, openapi_problems

CHART_ENV = "DLWORKSHOP_Z2JH_CHART"
HELM_EXTRA = "helm-python-sdk"
# Lint findings: 1 info, 2 warning, 3 error; --strict fails on warnings too.
LINT_WARNING = 2


def pull_command(chart: Chart) -> str:
    return f"helm pull jupyterhub --repo {HELM_REPOSITORY} --version {chart.version}"


def helm_installed() -> bool:
    try:
        import helm_python  # noqa: F401
    except (ModuleNotFoundError, OSError):  # OSError: the bundled native library does not load here
        return False
    return True


def find_chart(chart: Chart, given: Path | None = None) -> Path | None:
    """The released chart to run Helm on: `given` (--chart), $DLWORKSHOP_Z2JH_CHART, or a copy kept
    beside the chart's data files; None when there is none."""
    if given is None and os.environ.get(CHART_ENV):
        given = Path(os.environ[CHART_ENV])
    if given is None:
        kept = CHART_DATA / chart.version / "jupyterhub"
        return kept if (kept / "Chart.yaml").is_file() else None
    if not given.exists():
        raise ConfigError(
            f"no chart at {given}",
            problems=[f"--chart (or ${CHART_ENV}): {given} does not exist"],
            fix=f"give the chart folder or the .tgz that `{pull_command(chart)}` writes",
        )
    return given


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    """The values as Helm reads them from a file (strings, numbers, lists and mappings only)."""
    plain: dict[str, Any] = json.loads(json.dumps(values))
    return plain


@dataclass
class HelmResult:
    """What Helm made of the values: its refusals, and the objects it rendered (both versions checked)."""

    chart_path: Path
    versions: list[str]
    problems: list[str] = field(default_factory=list)
    objects: list[dict[str, Any]] = field(default_factory=list)


def _the_pinned_chart(helm: Any, chart: Chart, path: Path) -> None:
    with helm.Chart.load(path) as loaded:
        name, version = loaded.name, loaded.version
    if (name, version) != ("jupyterhub", chart.version):
        raise ConfigError(
            f"{path} is the chart {name} {version}, not jupyterhub {chart.version}",
            problems=[f"--chart (or ${CHART_ENV}): give the jupyterhub chart {chart.version}"],
            fix=f"`{pull_command(chart)}` writes it",
        )


def _lint_problems(helm: Any, path: Path, values: dict[str, Any], version: str) -> list[str]:
    report = helm.lint(path, values, strict=True, namespace=NAMESPACE, kube_version=f"v{version}.0")
    return [
        f"helm lint --strict (Kubernetes {version}): {message['path']}: {message['error'].strip()}"
        for message in report.get("messages", [])
        if message.get("severity", 0) >= LINT_WARNING
    ]


def rendered_objects(manifests: dict[str, str]) -> list[dict[str, Any]]:
    """The Kubernetes objects of `helm template`'s files (NOTES.txt and empty documents left out)."""
    return [
        document
        for name, text in sorted(manifests.items())
        if name.endswith((".yaml", ".yml"))
        for document in yaml.safe_load_all(text)
        if document
    ]


def helm_check(values: dict[str, Any], chart: Chart, path: Path) -> HelmResult:
    """Lint (strict) and template the values with Helm on the pinned chart, and validate every
    object it renders for the oldest Kubernetes the chart supports and a current one."""
    import helm_python

    _the_pinned_chart(helm_python, chart, path)
    return run_helm(values, path, kubernetes_versions(chart))


def run_helm(values: dict[str, Any], path: Path, versions: list[str]) -> HelmResult:
    """Helm's lint (strict) and template on the chart at `path`, each object validated."""
    import helm_python as helm

    values = _plain(values)
    result = HelmResult(chart_path=path, versions=versions)
    for version in result.versions:
        result.problems += _lint_problems(helm, path, values, version)
    with helm.Chart.load(path) as loaded:
        try:
            manifests = loaded.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
        except helm.HelmError as error:
            result.problems.append(f"helm template: {str(error).strip()}")
            return result
    result.objects = rendered_objects(manifests)
    result.problems += [
        problem
        for manifest in result.objects
        for version in result.versions
        for problem in openapi_problems(manifest, version)
    ]
    return result


def require_helm() -> None:
    if not helm_installed():
        raise WorkshopError(
            "Helm's checks need helm-python-sdk (Helm v4 as a library)",
            fix="pip install 'dlworkshop[kubernetes]'",
        )
