"""`dlworkshop up` beyond localhost: TLS from the hub's own proxy, or a refusal before anything is
built or started. Passwords and the access code never cross the network in clear."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

import docker
import httpx
import pytest

from dlworkshop import contract
from dlworkshop.docker_host import work_volumes
from dlworkshop.errors import ConfigError
from dlworkshop.hubclient import HubClient
from dlworkshop.local.tls import local_tls_files, self_signed
from dlworkshop.settings import load_settings, parse_settings
from tests.fixtures.hub import ACCESS_CODE, TEST_PORT, dlworkshop
from tests.fixtures.images import HUB_TEST_TAG, LEARNER_TEST_TAG, TEST_PREFIX, image_setting

MINIMAL = "auth: {mode: shared-code, access_code: x}\n"


def test_up_on_a_public_address_without_tls_is_refused_with_the_fix() -> None:
    with pytest.raises(ConfigError) as caught:
        local_tls_files(parse_settings(MINIMAL + "hub: {bind: 0.0.0.0}\n"))
    assert "in clear" in caught.value.message and "hub.tls.mode: self-signed" in (caught.value.fix or "")
    assert local_tls_files(parse_settings(MINIMAL)) is None  # localhost: plain HTTP is fine


@pytest.mark.parametrize(
    ("tls", "message"),
    [
        ("{mode: self-signed}", "hub.tls.domain is missing"),
        ("{mode: letsencrypt, domain: ws.example.org, email: a@example.org}", "needs `dlworkshop deploy`"),
        (
            "{mode: files, domain: ws.example.org, certificate: /nowhere/c.pem, key: /nowhere/k.pem}",
            "does not exist",
        ),
    ],
)
def test_tls_settings_up_cannot_serve_are_refused(tls: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        local_tls_files(parse_settings(MINIMAL + f"hub: {{bind: 0.0.0.0, tls: {tls}}}\n"))


def names_in(cert: Path) -> list[str]:
    from cryptography import x509

    loaded = x509.load_pem_x509_certificate(cert.read_bytes())
    names = loaded.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return [str(name.value) for name in names]


def test_the_self_signed_certificate_names_the_domain_and_is_kept(tmp_path: Path) -> None:
    cert, key = self_signed("192.0.2.10", tmp_path)
    assert (key.stat().st_mode & 0o777) == 0o600
    assert names_in(cert) == ["192.0.2.10"]
    first = cert.read_bytes()
    assert self_signed("192.0.2.10", tmp_path) == (cert, key) and cert.read_bytes() == first
    other, _ = self_signed("ws.example.org", tmp_path)  # another name: a new certificate
    assert names_in(other) == ["ws.example.org"]


def test_the_command_refuses_in_one_line_and_starts_nothing(tmp_path: Path) -> None:
    config = tmp_path / "workshop.yaml"
    config.write_text(MINIMAL + "hub: {bind: 0.0.0.0, container_name: dlw-never-started}\n")
    result = dlworkshop("up", "-c", str(config))
    assert result.returncode == 2 and "in clear" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.docker
@pytest.mark.hub
def test_up_on_every_address_serves_tls_and_no_clear_text_and_down_purge_removes_the_work_folders(
    learner_image: str, hub_image: str, tmp_path: Path
) -> None:
    port = TEST_PORT + 2
    name = f"{TEST_PREFIX}-hub-tls"
    client = docker.from_env()
    config = tmp_path / "workshop.yaml"
    config.write_text(
        f"""\
learners: {{count: 1}}
auth: {{mode: shared-code, access_code: {ACCESS_CODE}}}
image: {image_setting(LEARNER_TEST_TAG)}
resources: {{cpu: 0.25, memory: 1G, disk: 64M}}
hub:
  image: {HUB_TEST_TAG}
  bind: 0.0.0.0
  container_name: {name}
  network: {TEST_PREFIX}-tls
  data_volume: {TEST_PREFIX}-tls-data
  tls: {{mode: self-signed, domain: localhost, port: {port}}}
"""
    )
    dlworkshop("down", "-c", str(config), "--purge")
    try:
        started = dlworkshop("up", "-c", str(config))
        assert started.returncode == 0, started.stdout + started.stderr
        assert f"https://localhost:{port}" in started.stdout
        cert = contract.state_dir() / name / "tls" / "fullchain.pem"
        # A learner's browser, trusting the self-signed certificate: the login form over TLS.
        with HubClient(
            f"https://localhost:{port}", verify=ssl.create_default_context(cafile=str(cert))
        ) as learner:
            learner.login("tls-ada", ACCESS_CODE, "secret-of-tls-ada")
            assert learner.whoami()["name"] == "tls-ada"
        # The same port speaks no plain HTTP: nothing is sent in clear.
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://localhost:{port}/hub/login", timeout=10).raise_for_status()
        settings = load_settings(config)
        slots = client.volumes.list(
            filters={"label": [f"{contract.LABEL_HUB}={name}", contract.LABEL_WORK_SLOT]}
        )
        assert len(slots) == work_volumes.slot_count(settings)
        assert len(list(contract.work_images_dir(name).glob("*.img"))) == len(slots)
    finally:
        purged = dlworkshop("down", "-c", str(config), "--purge")
    assert purged.returncode == 0, purged.stderr
    assert not client.volumes.list(filters={"label": f"{contract.LABEL_HUB}={name}"})
    assert not contract.work_images_dir(name).exists()
    assert (
        str(contract.work_images_dir(name))
        not in subprocess.run(["losetup", "--list"], capture_output=True, text=True).stdout
    )


def test_check_reports_what_up_refuses(tmp_path: Path) -> None:
    """`check` and `up` agree (dlworkshop.local.preflight): plain HTTP beyond localhost, and an extra
    mount whose folder this machine lacks, block a start."""
    config = tmp_path / "workshop.yaml"
    config.write_text(
        MINIMAL
        + "learners: {count: 1}\nresources:\n  memory: 1G\n"
        + "  extra_mounts: [{source: /nowhere/datasets, target: /srv/datasets}]\n"
        + "hub: {bind: 0.0.0.0}\n"
    )
    result = dlworkshop("check", "-c", str(config))
    assert result.returncode != 0
    assert (
        "hub.bind: 0.0.0.0 would send learners' passwords and the access code over the network in clear"
        in (result.stdout + result.stderr)
    )
    assert "resources.extra_mounts: /nowhere/datasets is not a folder on this machine" in (
        result.stdout + result.stderr
    )
