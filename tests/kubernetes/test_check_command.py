"""`dlworkshop render z2jh --check FILE`: a values file edited by hand gets the checks `render`
runs, and a mistake is refused with its path (and, for a misspelt option, the nearest name)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from dlworkshop.kubernetes.helm import CHART_ENV
from tests.conftest import REPO

pytestmark = pytest.mark.kubernetes


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def dlworkshop(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Callable[..., Ran]:
    """The CLI in this process (its imports cost seconds a run), as `python -m dlworkshop ARGS` runs it."""
    from dlworkshop.cli import main

    monkeypatch.delenv(CHART_ENV, raising=False)

    def run(*args: str) -> Ran:
        capsys.readouterr()
        monkeypatch.setattr(sys, "argv", ["dlworkshop", *args])
        with pytest.raises(SystemExit) as exited:
            main()
        captured = capsys.readouterr()
        return Ran(int(exited.value.code or 0), captured.out, captured.err)

    return run


@pytest.fixture
def rendered(dlworkshop: Callable[..., Ran], tmp_path: Path) -> Path:
    out = tmp_path / "values.yaml"
    result = dlworkshop(
        "render", "z2jh", "-c", str(REPO / "examples/kubernetes/gpu-whole.yaml"), "--out", str(out)
    )
    assert result.returncode == 0, result.stderr
    return out


def edited(rendered: Path, tmp_path: Path, old: str, new: str) -> Path:
    text = rendered.read_text()
    assert old in text
    path = tmp_path / "edited.yaml"
    path.write_text(text.replace(old, new, 1))
    return path


def test_check_passes_the_rendered_file_and_says_what_it_checked(
    dlworkshop: Callable[..., Ran], rendered: Path
) -> None:
    result = dlworkshop("render", "z2jh", "--check", str(rendered))
    assert result.returncode == 0, result.stderr
    assert f"{rendered} passes chart 4.4.0's schema and KubeSpawner 7.0.0's options" in result.stdout
    assert "pod and claim for 1 profile(s), valid for Kubernetes 1.28 and 1.37" in result.stdout
    # Helm ran on the released chart kept beside the chart's data files.
    assert f"{rendered} passes helm lint --strict and helm template (" in result.stdout
    assert "not checked" not in result.stderr


def test_without_the_released_chart_helms_part_is_named_as_not_run_with_how_to_run_it(
    dlworkshop: Callable[..., Ran], rendered: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("dlworkshop.kubernetes.helm.CHART_DATA", tmp_path / "no-kept-chart")
    result = dlworkshop("render", "z2jh", "--check", str(rendered))
    assert result.returncode == 0, result.stderr
    assert f"{rendered} passes chart 4.4.0's schema and KubeSpawner 7.0.0's options" in result.stdout
    assert "helm lint" not in result.stdout
    assert "not checked: Helm's lint and template: give the released chart with --chart" in result.stderr


def test_check_refuses_a_misspelt_kubespawner_override_with_its_path_and_the_nearest_name(
    dlworkshop: Callable[..., Ran], rendered: Path, tmp_path: Path
) -> None:
    typo = edited(rendered, tmp_path, "extra_resource_limits:", "extra_resource_limts:")
    result = dlworkshop("render", "z2jh", "--check", str(typo))
    assert result.returncode == 2
    assert (
        "singleuser.profileList[0].kubespawner_override.extra_resource_limts: KubeSpawner has no option "
        "'extra_resource_limts'; did you mean extra_resource_limits?"
    ) in result.stderr
    assert f"fix: correct {typo}" in result.stderr and "Traceback" not in result.stderr


def test_check_refuses_a_misspelt_hub_config_option(
    dlworkshop: Callable[..., Ran], rendered: Path, tmp_path: Path
) -> None:
    typo = edited(rendered, tmp_path, "container_security_context:", "container_securty_context:")
    result = dlworkshop("render", "z2jh", "--check", str(typo))
    assert result.returncode == 2
    assert "hub.config.KubeSpawner.container_securty_context" in result.stderr
    assert "did you mean container_security_context?" in result.stderr


def test_check_refuses_a_schema_violation_with_its_path(
    dlworkshop: Callable[..., Ran], rendered: Path, tmp_path: Path
) -> None:
    values = yaml.safe_load(rendered.read_text())
    values["proxy"]["https"]["enabled"] = "yes"
    path = tmp_path / "schema.yaml"
    path.write_text(yaml.safe_dump(values))
    result = dlworkshop("render", "z2jh", "--check", str(path))
    assert result.returncode == 2
    assert "proxy.https.enabled: 'yes' is not of type 'boolean'" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_refuses_a_file_that_is_missing_or_no_mapping(
    dlworkshop: Callable[..., Ran], tmp_path: Path
) -> None:
    missing = dlworkshop("render", "z2jh", "--check", str(tmp_path / "none.yaml"))
    assert missing.returncode == 2 and "no values file at" in missing.stderr
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    listed = dlworkshop("render", "z2jh", "--check", str(tmp_path / "list.yaml"))
    assert listed.returncode == 2 and "holds no mapping of values" in listed.stderr
    assert "Traceback" not in missing.stderr + listed.stderr


def test_a_chart_that_is_not_there_is_refused_in_one_line(
    dlworkshop: Callable[..., Ran], rendered: Path, tmp_path: Path
) -> None:
    result = dlworkshop("render", "z2jh", "--check", str(rendered), "--chart", str(tmp_path / "nowhere"))
    assert result.returncode == 2
    assert "no chart at" in result.stderr and "helm pull jupyterhub" in result.stderr


def test_secret_out_writes_the_hubs_secret_privately_and_the_values_hold_none(
    dlworkshop: Callable[..., Ran], tmp_path: Path
) -> None:
    import stat

    values, secret = tmp_path / "values.yaml", tmp_path / "secret.yaml"
    mig = str(REPO / "examples/kubernetes/mig.yaml")
    result = dlworkshop("render", "z2jh", "-c", mig, "--out", str(values), "--secret-out", str(secret))
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    manifest = yaml.safe_load(secret.read_text())
    assert manifest["kind"] == "Secret" and manifest["metadata"]["name"] == "dlworkshop-hub-secrets"
    assert "access_code: change-me" in manifest["stringData"]["workshop.yaml"]
    assert "change-me" not in values.read_text()
    # Without --secret-out, a warning says the Secret must be made.
    again = dlworkshop("render", "z2jh", "-c", mig, "--out", str(values))
    assert "the values mount the Secret dlworkshop-hub-secrets: write it with --secret-out" in again.stderr


def test_secret_out_without_an_existing_secret_is_refused(
    dlworkshop: Callable[..., Ran], tmp_path: Path
) -> None:
    cpu = str(REPO / "examples/kubernetes/cpu.yaml")
    result = dlworkshop("render", "z2jh", "-c", cpu, "--secret-out", str(tmp_path / "s.yaml"))
    assert result.returncode == 2
    assert "kubernetes.existing_secret: name the Secret" in result.stderr
    assert not (tmp_path / "s.yaml").exists()
