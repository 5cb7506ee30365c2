"""`dlworkshop render z2jh`: the workshop as values for the Zero to JupyterHub Helm chart, and
`--check FILE`: the same checks on a values file edited by hand."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
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
    from dlworkshop.settings import Settings

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


@dataclass
class Checked:
    """What the checks found, what they covered, and what they could not run (and why)."""

    problems: list[str] = field(default_factory=list)
    covered: list[str] = field(default_factory=list)
    not_run: list[str] = field(default_factory=list)


def check_values(values: dict[str, Any], chart: Chart, chart_path: Path | None) -> Checked:
    """Every check on Z2JH values, in one place for `render` and `render --check`: the chart's
    schema (merged onto its defaults), KubeSpawner's options, then Helm's lint and template with
    every rendered object validated, when helm-python-sdk and the released chart are at hand."""
    from dlworkshop.kubernetes.chart import schema_problems
    from dlworkshop.kubernetes.checks import values_problems
    from dlworkshop.kubernetes.helm import CHART_ENV, find_chart, helm_check, helm_installed, pull_command

    checked = Checked(problems=schema_problems(values, chart) + values_problems(values))
    checked.covered.append(
        f"chart {chart.version}'s schema and KubeSpawner {chart.kubespawner_version}'s options"
    )
    if checked.problems:
        return checked  # Helm would only repeat the schema's refusals
    if not helm_installed():
        checked.not_run.append(f"Helm's lint and template: install {KUBERNETES_EXTRA}")
        return checked
    found = find_chart(chart, chart_path)
    if found is None:
        checked.not_run.append(
            f"Helm's lint and template: give the released chart with --chart or ${CHART_ENV} "
            f"(`{pull_command(chart)}` writes it)"
        )
        return checked
    result = helm_check(values, chart, found)
    checked.problems += result.problems
    checked.covered.append(
        f"helm lint --strict and helm template ({len(result.objects)} objects, each valid for "
        f"Kubernetes {' and '.join(result.versions)})"
    )
    return checked


def _warn(lines: list[str]) -> None:
    for line in lines:
        err_console.print(f"[yellow]warning[/]: {escape(line)}", highlight=False)


ChartOption = typer.Option(
    None,
    "--chart",
    help="The released chart (folder, or the .tgz `helm pull` writes) for Helm's lint and template "
    "(default: $DLWORKSHOP_Z2JH_CHART, else the copy of the released chart kept in this package).",
)


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
    secret_out: Path | None = typer.Option(
        None,
        "--secret-out",
        help="Write the Secret kubernetes.existing_secret names (the hub's secrets), for `kubectl apply -f`.",
    ),
    chart_path: Path | None = ChartOption,
    check: Path | None = typer.Option(
        None,
        "--check",
        help="Check this values file (edited by hand) instead of rendering: the same checks, nothing written.",
    ),
) -> None:
    """Helm values for the Zero to JupyterHub chart, checked against the chart's schema, KubeSpawner and Helm."""
    from dlworkshop.kubernetes.chart import HELM_REPOSITORY, load_chart
    from dlworkshop.kubernetes.values import dump_values, render_z2jh
    from dlworkshop.settings import Settings, find_config, load_settings

    if check is not None:
        version = chart_version or Settings.model_fields["kubernetes"].default.chart_version
        _check_file(check, load_chart(version), chart_path)
        return
    found = find_config(config)
    settings = load_settings(found)
    from dlworkshop.needs import refuse_if_cannot_teach

    refuse_if_cannot_teach(settings)
    chart = load_chart(chart_version or settings.kubernetes.chart_version)
    rendering = render_z2jh(settings)
    checks_installed = _checks_installed()
    not_run = [f"every check: install {KUBERNETES_EXTRA} (pip install '{KUBERNETES_EXTRA}')"]
    if checks_installed:
        result = check_values(rendering.values, chart, chart_path)
        if result.problems:
            raise ConfigError(
                f"the rendered values fail the checks for chart {chart.version}",
                problems=result.problems,
                fix="correct workshop.yaml (kubernetes section); nothing was written",
            )
        not_run = result.not_run
        checked = f"checked against {'; '.join(result.covered)}"
    else:
        checked = f"NOT checked: install {KUBERNETES_EXTRA} (pip install '{KUBERNETES_EXTRA}') for the checks"
    header = (
        f"Zero to JupyterHub values for {settings.workshop.name!r}, rendered by `dlworkshop render z2jh`\n"
        f"from {found or 'the embedded default workshop.yaml'}; {checked}.\n"
        + "".join(f"NOT checked by {line}.\n" for line in (not_run if checks_installed else []))
        + "Holds the workshop's secrets unless kubernetes.existing_secret names a Secret: keep it private.\n"
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
    secret_name = settings.kubernetes.existing_secret
    if secret_out is not None:
        _write_secret(settings, secret_out)
    elif secret_name is not None:
        rendering.warnings.append(
            f"the values mount the Secret {secret_name}: write it with --secret-out FILE and "
            "`kubectl apply --namespace workshop -f FILE` before helm"
        )
    _warn([*rendering.warnings, *(f"not checked: {line}" for line in not_run)])
    if out is None:
        typer.echo(text, nl=False)
        return
    _write_private(out, text)
    err_console.print(f"Wrote {out}: {checked}.", highlight=False, markup=False)


def _write_private(path: Path, text: str) -> None:
    """Secrets inside: readable by the owner only, from the first byte."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def _write_secret(settings: Settings, path: Path) -> None:
    from dlworkshop.kubernetes.values import dump_values, existing_secret_manifest, read_hub_files

    if settings.kubernetes.existing_secret is None:
        raise ConfigError(
            "--secret-out writes the Secret kubernetes.existing_secret names, and it names none",
            problems=["kubernetes.existing_secret: name the Secret to keep the hub's secrets in"],
            fix="set kubernetes.existing_secret in workshop.yaml, or leave out --secret-out",
        )
    manifest = existing_secret_manifest(settings, read_hub_files(settings))
    header = "The hub's secrets (workshop.yaml, accounts): keep this file private; kubectl apply -f it."
    _write_private(path, dump_values(manifest, header))
    err_console.print(
        f"Wrote {path}: the Secret {settings.kubernetes.existing_secret}.", highlight=False, markup=False
    )


def _read_values(path: Path) -> dict[str, Any]:
    import yaml

    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"no values file at {path}", fix="give the values.yaml to check") from None
    except PermissionError:
        raise ConfigError(
            f"{path} is not readable by this user", fix=f"check the permissions of {path}"
        ) from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not YAML: {error}", fix=f"correct {path}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path} holds no mapping of values", fix=f"correct {path}")
    return values


def _check_file(path: Path, chart: Chart, chart_path: Path | None) -> None:
    """`render z2jh --check FILE`: one line per check passed, or every problem and exit 2."""
    if not _checks_installed():
        raise WorkshopError("--check needs the Kubernetes checks", fix=f"pip install '{KUBERNETES_EXTRA}'")
    from dlworkshop.kubernetes.manifests import kubernetes_versions, learner_pods, openapi_problems

    values = _read_values(path)
    result = check_values(values, chart, chart_path)
    if not result.problems:
        pods = learner_pods(values, chart)
        versions = kubernetes_versions(chart)
        result.problems += [
            problem
            for pod in pods
            for resource in (pod.pod, pod.pvc)
            if resource is not None
            for version in versions
            for problem in openapi_problems(resource, version)
        ]
        result.covered.append(
            f"KubeSpawner's pod and claim for {len(pods)} profile(s), valid for Kubernetes {' and '.join(versions)}"
        )
    if result.problems:
        raise ConfigError(
            f"{path} fails the checks for chart {chart.version}",
            problems=result.problems,
            fix=f"correct {path} (or workshop.yaml, and render it again)",
        )
    _warn([f"not checked: {line}" for line in result.not_run])
    for line in result.covered:
        typer.echo(f"{path} passes {line}")


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
