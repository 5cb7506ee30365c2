"""`dlworkshop render z2jh`: the workshop as values for the Zero to JupyterHub Helm chart."""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from dlworkshop.cli import app
from dlworkshop.cli.config import ConfigOption
from dlworkshop.errors import ConfigError

render_app = typer.Typer(
    help="Render the workshop for another engine (values, manifests).", no_args_is_help=True
)
app.add_typer(render_app, name="render")
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
) -> None:
    """Helm values for the Zero to JupyterHub chart, checked against the chart's schema and KubeSpawner."""
    from dlworkshop.kubernetes.chart import HELM_REPOSITORY, load_chart
    from dlworkshop.kubernetes.values import dump_values, render_z2jh
    from dlworkshop.settings import find_config, load_settings

    found = find_config(config)
    settings = load_settings(found)
    chart = load_chart(chart_version or settings.kubernetes.chart_version)
    rendering = render_z2jh(settings, found.parent if found else None)
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
