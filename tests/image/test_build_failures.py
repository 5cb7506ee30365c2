"""A failed image build names what failed: the step, and whether a certificate was not trusted, a
host could not be reached, or a download did not match its hash, each with its own fix."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

import pytest
from rich.console import Console

from dlworkshop.errors import WorkshopError
from dlworkshop.image.failures import diagnose

PIP_BEHIND_A_PROXY = """\
#7 [environment 2/4] RUN --mount=type=secret,id=ca_bundle : "${VENV:?}" && useradd jovyan
#7 DONE 2.1s
#8 [environment 3/4] COPY image/requirements-cpu.lock /opt/venv/requirements.lock
#8 DONE 0.1s
#9 [environment 4/4] RUN --mount=type=secret,id=ca_bundle if [ -s /run/secrets/ca_bundle ]; then export PIP_CERT=/run/secrets/ca_bundle; fi && "/opt/venv/bin/pip" install --require-hashes --no-deps -r "/opt/venv/requirements.lock"
#9 1.203 Collecting absl-py==2.3.1 (from -r /opt/venv/requirements.lock (line 7))
#9 1.950 WARNING: Retrying (Retry(total=4, connect=None, read=None, redirect=None, status=None)) after connection broken by 'SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate in certificate chain (_ssl.c:992)'))': /packages/absl_py-2.3.1-py3-none-any.whl
#9 9.312 Could not fetch URL https://pypi.org/simple/absl-py/: There was a problem confirming the ssl certificate: HTTPSConnectionPool(host='pypi.org', port=443): Max retries exceeded with url: /simple/absl-py/ (Caused by SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate in certificate chain (_ssl.c:992)'))) - skipping
#9 9.401 ERROR: Could not find a version that satisfies the requirement absl-py==2.3.1 (from versions: none)
#9 9.402 ERROR: No matching distribution found for absl-py==2.3.1
#9 ERROR: process "/bin/bash -o pipefail -c pip install" did not complete successfully: exit code: 1
------
 > [environment 4/4] RUN --mount=type=secret,id=ca_bundle if [ -s /run/secrets/ca_bundle ]; then ...:
------
ERROR: failed to solve: process "/bin/bash -o pipefail -c pip install" did not complete successfully: exit code: 1
"""

APT_WITHOUT_DNS = """\
#5 [2/3] RUN apt-get update -qq && apt-get install -y -qq nodejs npm
#5 10.52 W: Failed to fetch http://deb.debian.org/debian/dists/bookworm/InRelease  Temporary failure resolving 'deb.debian.org'
#5 10.53 W: Some index files failed to download. They have been ignored, or old ones used instead.
#5 11.80 E: Unable to locate package nodejs
#5 ERROR: process "/bin/bash -o pipefail -c apt-get update -qq" did not complete successfully: exit code: 100
"""

PIP_HASH_MISMATCH = """\
#9 [environment 4/4] RUN pip install --require-hashes --no-deps -r requirements.lock
#9 30.1 ERROR: THESE PACKAGES DO NOT MATCH THE HASHES FROM THE REQUIREMENTS FILE. If you have updated the package versions, please update the hashes. Otherwise, examine the package contents carefully; someone may have tampered with them.
#9 30.1     numpy==2.1.3 from https://files.pythonhosted.org/packages/numpy-2.1.3.whl:
#9 30.1         Expected sha256 0123
#9 30.1              Got        4567
#9 ERROR: process "/bin/bash -o pipefail -c pip install" did not complete successfully: exit code: 1
"""

NPM_PROXY_CA = """\
#5 [2/4] RUN npm install --global configurable-http-proxy@4
#5 40.2 npm error code SELF_SIGNED_CERT_IN_CHAIN
#5 40.2 npm error errno SELF_SIGNED_CERT_IN_CHAIN
#5 40.2 npm error request to https://registry.npmjs.org/configurable-http-proxy failed, reason: self-signed certificate in certificate chain
#5 ERROR: process "/bin/bash -o pipefail -c npm install" did not complete successfully: exit code: 1
"""

RETRIED_THEN_FAILED_ELSEWHERE = """\
#4 [1/3] RUN pip download six
#4 2.0 WARNING: Retrying (Retry(total=4)) after connection broken by 'ConnectTimeoutError(..., 'Connection timed out')'
#4 DONE 9.0s
#5 [2/3] RUN false
#5 ERROR: process "/bin/bash -o pipefail -c false" did not complete successfully: exit code: 1
"""


@pytest.mark.parametrize(
    ("log", "cause", "step", "evidence"),
    [
        (PIP_BEHIND_A_PROXY, "certificate", "[environment 4/4] RUN", "CERTIFICATE_VERIFY_FAILED"),
        (APT_WITHOUT_DNS, "unreachable", "[2/3] RUN apt-get update", "Temporary failure resolving"),
        (PIP_HASH_MISMATCH, "hash", "[environment 4/4] RUN pip install", "DO NOT MATCH THE HASHES"),
        (NPM_PROXY_CA, "certificate", "[2/4] RUN npm install", "SELF_SIGNED_CERT_IN_CHAIN"),
        (RETRIED_THEN_FAILED_ELSEWHERE, None, "[2/3] RUN false", None),
    ],
    ids=["pip-certificate", "apt-dns", "pip-hash", "npm-certificate", "another-steps-retries"],
)
def test_the_failed_step_and_its_cause_are_read_from_the_log(
    log: str, cause: str | None, step: str, evidence: str | None
) -> None:
    failure = diagnose(log.splitlines())
    assert failure.cause == cause
    assert failure.step is not None and failure.step.startswith(step)
    assert (failure.evidence is None) if evidence is None else (evidence in (failure.evidence or ""))


def test_each_cause_has_its_own_fix() -> None:
    bundle = Path("/etc/ssl/certs/ca-certificates.crt")
    certificate = diagnose(PIP_BEHIND_A_PROXY.splitlines())
    assert "certificate verification failed" in certificate.summary()
    assert f"it trusted {bundle}" in certificate.hint(bundle) and "image.ca_bundle" in certificate.hint(
        bundle
    )
    assert "ca_bundle off" in certificate.hint(None)
    assert "network, DNS and proxy" in diagnose(APT_WITHOUT_DNS.splitlines()).hint(bundle)
    assert "dlworkshop image lock" in diagnose(PIP_HASH_MISMATCH.splitlines()).hint(bundle)
    hints = {
        diagnose(log.splitlines()).hint(bundle)
        for log in (PIP_BEHIND_A_PROXY, APT_WITHOUT_DNS, PIP_HASH_MISMATCH)
    }
    assert len(hints) == 3


@pytest.mark.docker
def test_a_real_build_that_cannot_reach_a_host_says_so_at_its_step(
    docker_client: object, tmp_path: Path
) -> None:
    from dlworkshop.image.build import run_build
    from dlworkshop.image.docker import require_engine

    (tmp_path / "Dockerfile").write_text(
        "FROM dlworkshop/base:bookworm\n"
        "RUN python3 -c \"import urllib.request; urllib.request.urlopen('http://dlworkshop-unreachable.invalid/')\"\n"
    )
    command = [
        require_engine(),
        "build",
        "--progress",
        "plain",
        "--tag",
        "dlw-upstream/unreachable:test",
        str(tmp_path),
    ]
    with pytest.raises(WorkshopError) as failed:
        run_build(command, Console(file=open("/dev/null", "w")), "building a test image")  # noqa: SIM115
    message = str(failed.value.message)
    assert message.splitlines()[-2].startswith("building a test image failed at [2/2] RUN python3")
    assert "a host could not be reached" in message and "Name or service not known" in message
    assert "network, DNS and proxy" in (failed.value.fix or "")


def pypi_seen_through_an_intercepting_proxy() -> bool | None:
    """True when PyPI's certificate does not verify against certifi's CAs (as pip's own) but does
    against this host's bundle: a TLS-intercepting proxy. None when PyPI cannot be reached."""
    import certifi

    def verifies(cafile: str) -> bool:
        context = ssl.create_default_context(cafile=cafile)
        with (
            socket.create_connection(("pypi.org", 443), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname="pypi.org"),
        ):
            return True

    try:
        verifies(str(Path("/etc/ssl/certs/ca-certificates.crt")))
    except (OSError, ssl.SSLError):
        return None
    try:
        return not verifies(certifi.where())
    except ssl.SSLCertVerificationError:
        return True


@pytest.mark.docker
@pytest.mark.image
def test_behind_a_tls_intercepting_proxy_the_default_build_trusts_the_host_and_off_names_the_certificate(
    base_image: str, learner_image: str
) -> None:
    """The learner image fixture is built with the default (auto: this host's bundle). With the bundle
    off, pip in the build does not trust the proxy, and the error says so at pip's step."""
    seen = pypi_seen_through_an_intercepting_proxy()
    if not seen:
        pytest.skip(
            "PyPI cannot be reached from here"
            if seen is None
            else "no TLS-intercepting proxy between this machine and PyPI: a certificate failure cannot be provoked"
        )
    from dlworkshop.image.build import build_learner_image

    with pytest.raises(WorkshopError) as failed:
        build_learner_image(
            "dlw-upstream/learner-env:untrusted",
            base_image=base_image,
            ca_bundle="off",
            target="environment",
            no_cache=True,
            console=Console(file=open("/dev/null", "w")),  # noqa: SIM115
        )
    assert "RUN --mount=type=secret,id=ca_bundle" in failed.value.message.splitlines()[-2]
    assert "certificate verification failed" in failed.value.message
    assert "ca_bundle off" in (failed.value.fix or "")
