"""`dlworkshop deploy` and `verify` against one fresh test host (a systemd container reached over
SSH, images from archives), in order: errors that must stop before any host is touched, the fresh
deploy and a learner over TLS, verify, idempotence, --check, an interrupted upgrade that
converges when run again, and the certificate modes."""

from __future__ import annotations

import os
import re
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from rich.console import Console

from dlworkshop import contract
from dlworkshop.deploy.deploy import deploy
from dlworkshop.settings import load_settings
from tests.conftest import docker_cli
from tests.fixtures.ansible import ACCESS_CODE, PREFIX, DeployHost

pytestmark = [pytest.mark.ansible, pytest.mark.docker, pytest.mark.slow]

# What a deploy must leave alone when it has nothing to do (or only checks).
STATE_COMMAND = r"""
set -e
docker ps -a --no-trunc --format '{{.Names}} {{.ID}} {{.Image}}'
docker ps -aq | xargs -r docker inspect -f '{{.Name}} {{.State.StartedAt}} {{.RestartCount}}'
docker images --no-trunc --format '{{.Repository}}:{{.Tag}} {{.ID}}'
docker network ls --format '{{.Name}} {{.ID}}'
docker volume ls --format '{{.Name}}'
iptables-save | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//'
sha256sum /etc/docker/daemon.json /etc/nginx/conf.d/* /etc/dlworkshop/tls/*/* /etc/dlworkshop/gpus.json \
  /var/lib/dlworkshop/*/workshop.yaml /etc/systemd/system/dlworkshop-firewall.service
stat -c '%n %a %Y' /etc/nginx/conf.d/* /etc/dlworkshop/tls/*/* /var/lib/dlworkshop/*/workshop.yaml
dpkg-query -W -f '${Package} ${Version}\n'
systemctl is-active docker nginx
"""


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    return errors[0]


def test_invalid_workshop_yaml_stops_before_any_host(deploy_host: DeployHost, tmp_path: Path) -> None:
    bad = tmp_path / "workshop.yaml"
    bad.write_text("auth: {mode: shared-code}\nresources: {cpuz: 2}\n")
    before = deploy_host.run("ls /var/lib/docker /etc/docker 2>&1 || true")
    result = deploy_host.dlworkshop("deploy", "-i", str(deploy_host.inventory), "-c", str(bad))
    assert result.returncode != 0
    assert "workshop.yaml has 2 problem(s)" in one_error_line(result)
    assert "resources.cpuz: unknown key" in result.stderr
    assert "TASK" not in result.stdout  # no playbook ran
    assert deploy_host.run("ls /var/lib/docker /etc/docker 2>&1 || true") == before


def test_undeployable_settings_stop_before_any_host(deploy_host: DeployHost, tmp_path: Path) -> None:
    plain_http = tmp_path / "workshop.yaml"
    plain_http.write_text("auth: {mode: shared-code, access_code: x}\n")
    result = deploy_host.dlworkshop("deploy", "-i", str(deploy_host.inventory), "-c", str(plain_http))
    assert result.returncode != 0
    assert "cannot be deployed" in one_error_line(result)
    assert "hub.tls.mode" in result.stderr
    assert "TASK" not in result.stdout


def test_bad_inventory_is_one_clear_error(deploy_host: DeployHost, tmp_path: Path) -> None:
    broken = tmp_path / "inventory.yml"
    broken.write_text("workshop:\n  hosts: [unclosed\n")
    result = deploy_host.dlworkshop("deploy", "-i", str(broken), "-c", str(deploy_host.config))
    assert result.returncode != 0
    assert f"inventory {broken} cannot be read" in one_error_line(result)
    assert "TASK" not in result.stdout
    no_group = tmp_path / "web.yml"
    no_group.write_text("webservers:\n  hosts:\n    web1:\n")
    result = deploy_host.dlworkshop("deploy", "-i", str(no_group), "-c", str(deploy_host.config))
    assert "no hosts in the `workshop` group" in one_error_line(result)


def test_unreachable_host_is_named(deploy_host: DeployHost, tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.yml"
    # Port 9 on loopback: nothing listens, so SSH is refused at once (no traffic leaves the machine).
    inventory.write_text(
        "workshop:\n  hosts:\n    gone-host:\n      ansible_host: 127.0.0.1\n      ansible_port: 9\n"
        "      ansible_ssh_common_args: -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null\n"
    )
    result = deploy_host.dlworkshop("deploy", "-i", str(inventory), "-c", str(deploy_host.config))
    assert result.returncode != 0
    line = one_error_line(result)
    assert "gone-host: unreachable" in line, line
    assert re.search(r"gone-host\s+│\s+0\s+│\s+0\s+│\s+0\s+│\s+1", result.stdout), result.stdout[-1500:]


def check_mode(host: DeployHost, look: str) -> str:
    """`deploy --check` succeeds, reports what it would change, and leaves what `look` prints as it
    was; returns its output."""
    before = host.run(look)
    result = host.dlworkshop("deploy", "-i", str(host.inventory), "-c", str(host.config), "--check")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert re.search(r"testhost\s+│\s+\d+\s+│\s+[1-9]\d*\s+│\s+0\s+│\s+0", result.stdout), result.stdout[
        -1500:
    ]
    assert host.run(look) == before
    return result.stdout


def test_check_mode_on_a_fresh_host_changes_nothing(deploy_host: DeployHost) -> None:
    look = "dpkg-query -W -f '${Package} ${Version}\\n'; ls -laR /etc/docker /etc/nginx /etc/dlworkshop /var/lib/dlworkshop 2>&1; iptables-save 2>&1 || true"
    output = check_mode(deploy_host, look)
    assert "TASK Stop checking a host that has no Docker yet (a deploy installs it)" in output


def tls_context(host: DeployHost) -> ssl.SSLContext:
    return host.tls_context()


def test_learner_logs_in_over_tls_and_starts_a_server(deployed: DeployHost) -> None:
    with httpx.Client(
        base_url=deployed.url, verify=tls_context(deployed), follow_redirects=True, timeout=30
    ) as client:
        page = client.get("/hub/login")
        assert page.status_code == 200
        xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text).group(1)
        response = client.post(
            "/hub/login",
            data={"username": "ada", "password": ACCESS_CODE, "secret": "ada-secret", "_xsrf": xsrf},
        )
        assert "/hub/login" not in str(response.url), "the login through TLS failed"
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            api = client.get("/user/ada/api")
            if api.status_code == 200 and "version" in api.text:
                break
            time.sleep(2)
        else:
            raise AssertionError("ada's server did not start behind the TLS proxy within 300 s")
    # The certificate is checked for its name: another name is refused.
    with pytest.raises(httpx.ConnectError, match=r"CERTIFICATE_VERIFY_FAILED|hostname"):
        httpx.get(f"https://127.0.0.1:{deployed.https_port}/hub/login", verify=tls_context(deployed))
    redirect = httpx.get(f"http://127.0.0.1:{deployed.http_port}/hub/login", follow_redirects=False)
    assert redirect.status_code == 301
    assert redirect.headers["location"] == "https://localhost/hub/login"


def test_verify_passes(deployed: DeployHost) -> None:
    result = deployed.dlworkshop("verify", "-i", str(deployed.inventory), "-c", str(deployed.config))
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    assert " failed" not in result.stdout
    assert "every check passed" in result.stdout


def test_material_shared_on_the_deployed_hub_reaches_its_shared_folder(
    deployed: DeployHost, tmp_path: Path
) -> None:
    handout = tmp_path / "handout.txt"
    handout.write_text("episode 3 solutions\n")
    result = deployed.dlworkshop(
        "share", "-i", str(deployed.inventory), "-c", str(deployed.config), str(handout)
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "learners see ~/work/shared/handout.txt" in result.stdout
    volume = contract.shared_volume_name(load_settings(deployed.config).hub.container_name)
    folder = deployed.run(f"docker volume inspect -f '{{{{.Mountpoint}}}}' {volume}").strip()
    assert deployed.run(f"stat -c '%U %a' {folder}/handout.txt").strip() == "root 644"
    assert deployed.run(f"cat {folder}/handout.txt") == "episode 3 solutions\n"


def test_second_deploy_changes_nothing(deployed: DeployHost) -> None:
    before = deployed.run(STATE_COMMAND)
    result = deploy(
        load_settings(deployed.config),
        deployed.inventory,
        Console(file=open(os.devnull, "w")),  # noqa: SIM115
    )
    assert result.succeeded
    assert result.stats, "ansible-runner reported no stats"
    for host, stats in result.stats.items():
        assert stats.changed == 0, f"{host}: a second deploy changed {stats.changed} task(s)"
        assert stats.ok > 0
    assert deployed.run(STATE_COMMAND) == before


def test_check_mode_changes_nothing(deployed: DeployHost) -> None:
    # Drift that a real deploy would repair: --check must see it and leave it alone.
    deployed.run("echo '# edited by hand' >> /etc/nginx/conf.d/dlworkshop-http.conf")
    assert "check mode: nothing is changed" in check_mode(deployed, STATE_COMMAND)
    assert "# edited by hand" in deployed.run("cat /etc/nginx/conf.d/dlworkshop-http.conf")


def certificate_chain(folder: Path, name: str) -> tuple[Path, Path, Path]:
    """A private CA and a certificate for `name` signed by it: (ca.pem, fullchain.pem, key.pem)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.now(timezone.utc)

    def issue(subject: str, key, issuer_name, issuer_key, ca: bool):  # type: ignore[no-untyped-def]
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(issuer_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False
            )
        return builder.sign(issuer_key, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dlworkshop test CA")])
    ca_cert = issue("dlworkshop test CA", ca_key, ca_name, ca_key, ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = issue(name, key, ca_name, ca_key, ca=False)
    pem = serialization.Encoding.PEM
    paths = folder / "ca.pem", folder / "fullchain.pem", folder / "key.pem"
    paths[0].write_bytes(ca_cert.public_bytes(pem))
    paths[1].write_bytes(leaf.public_bytes(pem) + ca_cert.public_bytes(pem))
    paths[2].write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


def test_supplied_certificate_is_served(deployed: DeployHost, tmp_path: Path) -> None:
    ca, chain, key = certificate_chain(tmp_path, "localhost")
    config = tmp_path / "workshop.yaml"
    config.write_text(
        deployed.config.read_text().replace(
            "tls: {mode: self-signed, domain: localhost}",
            f"tls: {{mode: files, domain: localhost, certificate: {chain}, key: {key}}}",
        )
    )
    assert "mode: files" in config.read_text()
    result = deployed.dlworkshop("deploy", "-i", str(deployed.inventory), "-c", str(config))
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    # The first deploy after the --check test: the hand edit it left is repaired.
    assert "# edited by hand" not in deployed.run("cat /etc/nginx/conf.d/dlworkshop-http.conf")
    context = ssl.create_default_context(cafile=str(ca))
    assert httpx.get(f"{deployed.url}/hub/health", verify=context).status_code == 200
    verified = deployed.dlworkshop(
        "verify", "-i", str(deployed.inventory), "-c", str(config), "--ca-file", str(ca)
    )
    assert verified.returncode == 0, verified.stdout[-5000:] + verified.stderr[-2000:]


PEBBLE_CONFIG = """\
{"pebble": {"listenAddress": "127.0.0.1:14000", "managementListenAddress": "127.0.0.1:15000",
 "certificate": "/opt/pebble/fullchain.pem", "privateKey": "/opt/pebble/key.pem",
 "httpPort": 80, "tlsPort": 443, "ocspResponderURL": "", "externalAccountBindingRequired": false}}
"""


def test_letsencrypt_certificate_through_acme_http01(deployed: DeployHost, tmp_path: Path) -> None:
    """Let's Encrypt mode against Debian's pebble (an ACME test CA) running on the host itself: the
    http-01 challenge is really fetched from port 80, the issued chain is served on 443."""
    domain = "hub.deploytest.test"
    ca, chain, key = certificate_chain(tmp_path, "localhost")  # pebble's own HTTPS endpoint
    (tmp_path / "pebble-config.json").write_text(PEBBLE_CONFIG)
    deployed.run("apt-get install -y -qq pebble >/dev/null && mkdir -p /opt/pebble")
    for local, remote in (
        (chain, "/opt/pebble/fullchain.pem"),
        (key, "/opt/pebble/key.pem"),
        (tmp_path / "pebble-config.json", "/opt/pebble/config.json"),
        (ca, "/usr/local/share/ca-certificates/dlworkshop-deploytest-acme.crt"),
    ):
        deployed.put(local, remote)
    # The ACME client trusts the test CA's endpoint through the system store, as it would a real CA.
    deployed.run(
        f"update-ca-certificates >/dev/null 2>&1; grep -q {domain} /etc/hosts || echo '127.0.0.1 {domain}' >> /etc/hosts"
    )
    deployed.start(
        "pebble -config /opt/pebble/config.json > /var/log/pebble.log 2>&1",
        env={"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"},
    )
    deployed.run(
        "for i in $(seq 30); do python3 -c \"import urllib.request as u; u.urlopen('https://localhost:14000/dir')\" 2>/dev/null && exit 0; sleep 1; done; exit 1"
    )
    config = tmp_path / "workshop.yaml"
    config.write_text(
        deployed.config.read_text().replace(
            "tls: {mode: self-signed, domain: localhost}",
            f'tls: {{mode: letsencrypt, domain: {domain}, email: admin@{domain}, acme_directory: "https://localhost:14000/dir"}}',
        )
    )
    result = deployed.dlworkshop("deploy", "-i", str(deployed.inventory), "-c", str(config))
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert f"Attempting to validate w/ HTTP: http://{domain}:80/.well-known/acme-challenge/" in deployed.run(
        "cat /var/log/pebble.log"
    )
    root = tmp_path / "pebble-root.pem"
    root.write_text(
        deployed.run(
            "python3 -c \"import urllib.request as u; print(u.urlopen('https://localhost:15000/roots/0').read().decode())\""
        )
    )
    verified = deployed.dlworkshop(
        "verify", "-i", str(deployed.inventory), "-c", str(config), "--ca-file", str(root)
    )
    assert verified.returncode == 0, verified.stdout[-5000:] + verified.stderr[-2000:]
    again = deploy(load_settings(config), deployed.inventory, Console(file=open(os.devnull, "w")))  # noqa: SIM115
    assert [s.changed for s in again.stats.values()] == [0], "a valid certificate was requested again"


def test_an_upgrade_interrupted_midway_converges_to_the_rebuilt_image(
    deployed: DeployHost, hub_image: str, tmp_path: Path
) -> None:
    """An upgrade (same tag, new image: the deploy compares image IDs, not tags) killed while it
    copies the new image's archive, after the hub container was lost too; the next run converges:
    the archive copied again, the hub re-created on the new image, the killed run's private folder
    gone. Last of the deploy tests: its deploy brings the host back to the run's own settings
    (self-signed TLS after the certificate tests), which the fault suite works on after it."""
    tag = f"{PREFIX}/hub:upgrade"
    archive = tmp_path / "hub-upgrade.tar"
    config = tmp_path / "workshop.yaml"
    original = load_settings(deployed.config)
    config.write_text(
        deployed.config.read_text()
        .replace(f"image: {original.hub.image}", f"image: {tag}")
        .replace(f"image_archive: {original.hub.image_archive}", f"image_archive: {archive}")
    )
    # The host has the tag already, on the image deployed before (as after the previous release).
    deployed.run(f"docker tag {original.hub.image} {tag} && docker rm -f dlworkshop-hub")
    old_id = deployed.run(f"docker image inspect -f '{{{{.Id}}}}' {tag}").strip()
    try:
        subprocess.run(
            [docker_cli(), "build", "-q", "-t", tag, "-"],
            input=f"FROM {hub_image}\nLABEL org.dlworkshop.deploytest.revision=2\n",
            text=True,
            check=True,
            capture_output=True,
        )
        new_id = subprocess.check_output(
            [docker_cli(), "image", "inspect", "-f", "{{.Id}}", tag], text=True
        ).strip()
        assert new_id != old_id
        subprocess.run([docker_cli(), "save", "-o", str(archive), tag], check=True)

        command = [
            sys.executable, "-m", "dlworkshop", "deploy", "-i", str(deployed.inventory), "-c", str(config),
        ]  # fmt: skip
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
        )
        seen = []
        try:
            for line in process.stdout:  # type: ignore[union-attr]
                seen.append(line)
                if line.startswith(f"TASK Copy the archive of {tag}"):
                    time.sleep(2)  # well into the copy
                    break
        finally:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        assert any(line.startswith(f"TASK Copy the archive of {tag}") for line in seen), "".join(seen)[-3000:]
        assert deployed.run(f"docker image inspect -f '{{{{.Id}}}}' {tag}").strip() == old_id
        assert deployed.run("docker ps -aq --filter name=^dlworkshop-hub$").strip() == ""

        rerun = deployed.dlworkshop("deploy", "-i", str(deployed.inventory), "-c", str(config))
        assert rerun.returncode == 0, rerun.stdout[-4000:] + rerun.stderr[-2000:]
        assert f"TASK Copy the archive of {tag}" in rerun.stdout
        running = deployed.run("docker inspect -f '{{.Image}}' dlworkshop-hub").strip()
        assert running == new_id, f"the hub runs {running}, not the rebuilt {new_id}"
        # The killed run's private folder (its extra vars hold the access code) is gone too.
        assert not list(Path(tempfile.gettempdir()).glob(f"dlworkshop-deploy-*/run-{process.pid}"))
        verified = deployed.dlworkshop("verify", "-i", str(deployed.inventory), "-c", str(config))
        assert verified.returncode == 0, verified.stdout[-5000:] + verified.stderr[-2000:]
        # The host serves the self-signed certificate the fault suite trusts again.
        assert httpx.get(f"{deployed.url}/hub/health", verify=deployed.tls_context()).status_code == 200
    finally:
        subprocess.run([docker_cli(), "rmi", tag], capture_output=True)
