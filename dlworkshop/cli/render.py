"""`dlworkshop render z2jh`: the workshop as values for the Zero to JupyterHub Helm chart."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape

from dlworkshop.cli import command_group
from dlworkshop.cli.config import ConfigOption
from dlworkshop.errors import ConfigError, WorkshopError

if TYPE_CHECKING:
    from dlworkshop.kubernetes.chart import Chart

render_app = command_group("render", "Render the workshop for another engine (values, manifests).")
err_console = Console(stderr=True, soft_wrap=True)

KUBERNETES_EXTRA = "dlworkshop[kubernetes]"
RELEASE = "dlworkshop"


def _checks_installed() -> bool:
    try:
        import jsonschema  # noqa: F401
        import kubespawner  # noqa: F401
    except ModuleNotFoundError:
        return False
    return True


@render_app.command("z2jh")
def z2jh(
    config: Path | None = ConfigOption,
    out: Path | None = typer.Option(None, "--out", "-o", help="Write the values here (default: stdout)."),
    chart_version: str | None = typer.Option(
        None,
        "--chart-version",
        help="Z2JH chart version to check against (default: kubernetes.chart_version).",
    ),
    manifests: Path | None = typer.Option(
        None,
        "--manifests",
        help="Also write the pod and PVC KubeSpawner would create for a learner, checked against "
        "Kubernetes' OpenAPI schema (for `kubectl apply --dry-run=server -f DIR` on the cluster).",
    ),
) -> None:
    """Helm values for the Zero to JupyterHub chart, checked against the chart's schema and KubeSpawner."""
    from dlworkshop.kubernetes.chart import HELM_REPOSITORY, load_chart
    from dlworkshop.kubernetes.values import dump_values, render_z2jh
    from dlworkshop.settings import find_config, load_settings

    found = find_config(config)
    settings = load_settings(found)
    from dlworkshop.needs import refuse_if_cannot_teach

    refuse_if_cannot_teach(settings)
    chart = load_chart(chart_version or settings.kubernetes.chart_version)
    rendering = render_z2jh(settings)
    checks_installed = _checks_installed()
    if checks_installed:
        from dlworkshop.kubernetes.chart import schema_problems
        from dlworkshop.kubernetes.checks import values_problems

        problems = schema_problems(rendering.values, chart) + values_problems(rendering.values)
        if problems:
            raise ConfigError(
                f"the rendered values fail the checks for chart {chart.version}",
                problems=problems,
                fix="correct workshop.yaml (kubernetes section); nothing was written",
            )
        checked = f"checked against chart {chart.version}'s schema and KubeSpawner {chart.kubespawner_version}'s options"
    else:
        checked = f"NOT checked: install {KUBERNETES_EXTRA} (pip install '{KUBERNETES_EXTRA}') for the checks"
    header = (
        f"Zero to JupyterHub values for {settings.workshop.name!r}, rendered by `dlworkshop render z2jh`\n"
        f"from {found or 'the embedded default workshop.yaml'}; {checked}.\n"
        "Holds the workshop's secrets (access code, accounts, TLS key): keep it private.\n"
        f"helm upgrade --install {RELEASE} jupyterhub --repo {HELM_REPOSITORY} --version {chart.version} "
        "--namespace workshop --create-namespace --timeout 30m --values values.yaml"
    )
    text = dump_values(rendering.values, header)
    if manifests is not None:
        if not checks_installed:
            raise WorkshopError(
                "--manifests needs KubeSpawner and the OpenAPI schemas",
                fix=f"pip install '{KUBERNETES_EXTRA}'",
            )
        _write_manifests(rendering.values, chart, manifests)
    warnings = rendering.warnings if checks_installed else [*rendering.warnings, checked]
    for warning in warnings:
        err_console.print(f"[yellow]warning[/]: {escape(warning)}", highlight=False)
    if out is None:
        typer.echo(text, nl=False)
        return
    # Secrets inside: readable by the owner only, from the first byte.
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    err_console.print(f"Wrote {out}: {checked}.", highlight=False, markup=False)


def _write_manifests(values: dict[str, Any], chart: Chart, folder: Path) -> None:
    """One learner's pod and PVC per profile, as KubeSpawner builds them; no secrets inside."""
    import yaml

    from dlworkshop.kubernetes.manifests import kubernetes_versions, learner_pods, openapi_problems

    pods = learner_pods(values, chart)
    versions = kubernetes_versions(chart)
    resources = [resource for pod in pods for resource in (pod.pod, pod.pvc) if resource is not None]
    problems = [
        problem
        for resource in resources
        for version in versions
        for problem in openapi_problems(resource, version)
    ]
    if problems:
        raise ConfigError(
            "KubeSpawner's pods fail Kubernetes' OpenAPI schema",
            problems=problems,
            fix="correct workshop.yaml (kubernetes section); nothing was written",
        )
    folder.mkdir(parents=True, exist_ok=True)
    for pod in pods:
        for kind, resource in (("pod", pod.pod), ("pvc", pod.pvc)):
            if resource is not None:
                (folder / f"{kind}-{pod.profile}.yaml").write_text(yaml.safe_dump(resource, sort_keys=False))
    err_console.print(
        f"Wrote {len(resources)} manifests to {folder}: checked against Kubernetes {' and '.join(versions)}.",
        highlight=False,
        markup=False,
    )
