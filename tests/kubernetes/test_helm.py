"""Check (e), Helm itself: every example's values lint clean with `helm lint --strict` for the
oldest Kubernetes the chart supports and a current one, render with `helm template`, and every
object rendered is valid for both (kubernetes-validate, strict); Helm refuses what the schema does.

Helm runs on the released chart kept in dlworkshop/kubernetes/chart/<version>/jupyterhub
(reproduced from the chart's tag by scripts/refresh-z2jh-chart, as its release makes it), or on the
folder or `.tgz` in $DLWORKSHOP_Z2JH_CHART.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dlworkshop.kubernetes.chart import Chart
from dlworkshop.kubernetes.helm import CHART_ENV, HelmResult, find_chart, helm_check, helm_installed
from tests.kubernetes.conftest import RenderedExample

pytestmark = pytest.mark.kubernetes


@pytest.fixture(scope="session")
def released_chart(chart: Chart) -> Path:
    if not helm_installed():
        pytest.fail("helm-python-sdk is not installed: pip install 'dlworkshop[kubernetes]'")
    found = find_chart(chart)
    if found is None:
        pytest.skip(
            f"no released Z2JH chart {chart.version} here: dlworkshop/kubernetes/chart/{chart.version}/"
            f"jupyterhub is missing (scripts/refresh-z2jh-chart writes it); or set {CHART_ENV} to the "
            f"folder or .tgz `helm pull jupyterhub --repo https://hub.jupyter.org/helm-chart/ --version "
            f"{chart.version}` writes"
        )
    return found


@pytest.fixture(scope="session")
def helm_results(
    released_chart: Path, chart: Chart, rendered_examples: dict[str, RenderedExample]
) -> dict[str, HelmResult]:
    """Helm on each example once per run (a few seconds each)."""
    return {
        name: helm_check(example.values, chart, released_chart) for name, example in rendered_examples.items()
    }


def objects_of(result: HelmResult, kind: str) -> dict[str, dict[str, Any]]:
    return {item["metadata"]["name"]: item for item in result.objects if item["kind"] == kind}


def test_helm_lints_and_renders_every_example_into_valid_objects(
    example: RenderedExample, helm_results: dict[str, HelmResult]
) -> None:
    result = helm_results[example.path.name]
    assert result.versions == ["1.28", "1.37"]
    assert result.problems == []
    kinds = {item["kind"] for item in result.objects}
    assert {"Deployment", "Service", "Secret", "ConfigMap", "StatefulSet", "DaemonSet"} <= kinds
    assert len(result.objects) >= 30


def test_the_hub_runs_our_image_with_our_config_and_the_placeholders_hold_a_learners_room(
    example: RenderedExample, helm_results: dict[str, HelmResult]
) -> None:
    result = helm_results[example.path.name]
    hub = objects_of(result, "Deployment")["hub"]["spec"]["template"]["spec"]["containers"][0]
    assert hub["image"] == example.settings.hub.image
    placeholder = objects_of(result, "StatefulSet")["user-placeholder"]["spec"]
    assert placeholder["replicas"] == example.values["scheduling"]["userPlaceholder"]["replicas"]
    held = placeholder["template"]["spec"]["containers"][0]["resources"]
    assert held == example.values["scheduling"]["userPlaceholder"]["resources"]
    selector = example.values["singleuser"].get("nodeSelector")
    if selector:
        assert placeholder["template"]["spec"]["nodeSelector"] == selector


def test_helm_refuses_a_misspelt_key_with_its_path(
    released_chart: Path, chart: Chart, rendered_examples: dict[str, RenderedExample]
) -> None:
    values = {**rendered_examples["cpu.yaml"].values}
    values["hub"] = {**values["hub"], "extraConfg": {}}
    problems = helm_check(values, chart, released_chart).problems
    assert problems and all("additional properties 'extraConfg' not allowed" in line for line in problems)
    assert any(line.startswith("helm lint --strict (Kubernetes 1.28)") for line in problems)
    assert any(line.startswith("helm template: ") for line in problems)


def test_check_runs_helm_on_a_hand_edited_file_and_refuses_what_helm_refuses(
    released_chart: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from dlworkshop.cli import main
    from tests.conftest import REPO

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        monkeypatch.setattr("sys.argv", ["dlworkshop", "render", "z2jh", *args])
        with pytest.raises(SystemExit) as exited:
            main()
        captured = capsys.readouterr()
        return int(exited.value.code or 0), captured.out, captured.err

    values = tmp_path / "values.yaml"
    code, _, err = run(
        "-c", str(REPO / "examples/kubernetes/mig.yaml"), "--chart", str(released_chart), "-o", str(values)
    )
    assert code == 0, err
    assert "helm lint --strict and helm template (" in values.read_text().splitlines()[1]
    code, out, err = run("--check", str(values), "--chart", str(released_chart))
    assert code == 0, err
    assert (
        "passes helm lint --strict and helm template (" in out
        and "valid for Kubernetes 1.28 and 1.37)" in out
    )
    edited = tmp_path / "edited.yaml"
    edited.write_text(values.read_text().replace("  resources:\n", "  resourcez:\n", 1))
    code, _, err = run("--check", str(edited), "--chart", str(released_chart))
    assert code == 2 and "resourcez" in err and "Traceback" not in err
