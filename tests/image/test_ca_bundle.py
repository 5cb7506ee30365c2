"""Builds and downloads trust this host's CA bundle by default (behind a TLS-intercepting proxy the
host trusts the proxy; pip's certifi, Node and a fresh image do not), in every build step that
downloads: apt, pip, npm. `off` turns it off."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dlworkshop.errors import WorkshopError
from dlworkshop.image.ca_bundle import host_ca_bundle, parse_ca_bundle_option, resolve_ca_bundle
from dlworkshop.settings import parse_settings
from tests.conftest import REPO

SECRET = "--mount=type=secret,id=ca_bundle"


def test_auto_is_the_hosts_own_bundle_and_the_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = parse_settings("auth: {mode: shared-code, access_code: x}\n")
    assert settings.image.ca_bundle == "auto"
    bundle = tmp_path / "proxy.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    assert resolve_ca_bundle("auto") == bundle.resolve()
    monkeypatch.delenv("SSL_CERT_FILE")
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    system = host_ca_bundle()
    assert system is None or system.is_file()
    if Path("/etc/ssl/certs/ca-certificates.crt").is_file():
        assert system == Path("/etc/ssl/certs/ca-certificates.crt").resolve()


@pytest.mark.parametrize(
    ("written", "read"), [("off", "off"), ("false", "off"), ("null", "off"), ("auto", "auto")]
)
def test_the_setting_reads_auto_off_or_a_path(written: str, read: str) -> None:
    settings = parse_settings(
        f"auth: {{mode: shared-code, access_code: x}}\nimage: {{ca_bundle: {written}}}\n"
    )
    assert settings.image.ca_bundle == read


def test_a_path_is_relative_to_the_file_and_must_exist_when_used(tmp_path: Path) -> None:
    settings = parse_settings(
        "auth: {mode: shared-code, access_code: x}\nimage: {ca_bundle: certs/proxy.pem}\n", base_dir=tmp_path
    )
    assert settings.image.ca_bundle == tmp_path / "certs" / "proxy.pem"
    with pytest.raises(WorkshopError, match=r"proxy\.pem does not exist"):
        resolve_ca_bundle(settings.image.ca_bundle)
    assert resolve_ca_bundle("off") is None
    assert parse_ca_bundle_option("off") == "off" and parse_ca_bundle_option("x.pem") == Path("x.pem")


def captured_build(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    from dlworkshop.image import build

    commands: list[list[str]] = []
    monkeypatch.setattr(build, "require_engine", lambda: "docker")
    monkeypatch.setattr(build, "run_build", lambda command, *args, **kwargs: commands.append(command))
    return commands


def test_image_builds_pass_the_hosts_bundle_by_default_and_nothing_when_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dlworkshop.image.build import build_hub_image, build_learner_image

    host = host_ca_bundle()
    if host is None:
        pytest.skip("this machine has no system CA bundle to pass")
    commands = captured_build(monkeypatch)
    build_learner_image("t:env", target="environment")
    build_hub_image("t:hub")
    build_learner_image("t:off", target="environment", ca_bundle="off")
    secrets = [[arg for arg in command if arg.startswith("id=ca_bundle")] for command in commands]
    assert secrets == [[f"id=ca_bundle,src={host}"], [f"id=ca_bundle,src={host}"], []]


def test_the_cli_defaults_to_auto() -> None:
    import os
    import subprocess
    import sys

    for command in (["image", "build", "--help"], ["data", "fetch", "--help"]):
        shown = subprocess.run(
            [sys.executable, "-m", "dlworkshop", *command],
            capture_output=True,
            text=True,
            env={**os.environ, "COLUMNS": "250"},
        ).stdout
        assert re.search(r"--ca-bundle\s+\S+\s+.*auto \(this host's bundle\).*\[default: auto\]", shown), (
            shown
        )


def run_instructions(dockerfile: Path) -> list[str]:
    """Each RUN instruction of a Dockerfile, its continuation lines joined."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    return [line for line in text.splitlines() if line.startswith("RUN ")]


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "hub/Dockerfile"])
def test_every_step_that_downloads_trusts_the_bundle(dockerfile: str) -> None:
    """apt through Acquire::https::CAInfo, pip through PIP_CERT, npm through NODE_EXTRA_CA_CERTS,
    each from the build's ca_bundle secret; local installs (--no-deps of this project) download nothing."""
    checked = 0
    for run in run_instructions(REPO / dockerfile):
        needs = {
            "Acquire::https::CAInfo=/run/secrets/ca_bundle": re.search(
                r"apt-get\S* (\"\$\{apt_ca\[@\]\}\" )?(update|install)", run
            ),
            "PIP_CERT=/run/secrets/ca_bundle": re.search(r"pip\"? install .*(-r |--requirement)", run),
            "NODE_EXTRA_CA_CERTS=/run/secrets/ca_bundle": re.search(r"npm install", run),
        }
        for use, downloads in needs.items():
            if downloads:
                checked += 1
                assert SECRET in run and use in run, f"{dockerfile}: {run[:120]}... does not trust the bundle"
    assert checked == (2 if dockerfile == "Dockerfile" else 3)
