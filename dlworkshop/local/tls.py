"""TLS for `dlworkshop up` on an address other than localhost: passwords and access codes never
cross the network in clear. The hub's own proxy serves the certificate (JupyterHub's ssl_cert and
ssl_key), self-signed or supplied, as the deploy's tls_proxy role does with nginx; Let's Encrypt
needs a deploy (its proxy answers the ACME challenge on port 80)."""

from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path
from typing import TYPE_CHECKING

from dlworkshop import contract
from dlworkshop.errors import ConfigError
from dlworkshop.settings import Settings

if TYPE_CHECKING:
    from cryptography import x509

# As long as the deploy's self-signed certificates (tls_proxy_self_signed_days).
SELF_SIGNED_DAYS = 825
CERT_NAME = contract.HUB_TLS_CERT.name
KEY_NAME = contract.HUB_TLS_KEY.name


CLEAR_TEXT_FIX = (
    "set hub.tls.mode: self-signed (or files, with certificate and key) and hub.tls.domain, "
    "or keep hub.bind: 127.0.0.1 behind a TLS proxy on this machine (and set hub.public_url)"
)


def clear_text_problem(settings: Settings) -> str | None:
    """Plain HTTP beyond this machine's loopback: what `check` reports and `up` refuses."""
    hub = settings.hub
    if hub.tls.mode == "none" and not hub.local_only:
        return (
            f"hub.bind: {hub.bind} would send learners' passwords and the access code over the "
            "network in clear"
        )
    return None


def check_local_tls(settings: Settings) -> None:
    """`up` serves TLS where the hub is reachable from other machines, or refuses, saying how."""
    tls = settings.hub.tls
    problem = clear_text_problem(settings)
    if problem:
        raise ConfigError(problem, fix=CLEAR_TEXT_FIX)
    if tls.mode == "none":
        return
    if tls.mode == "letsencrypt":
        raise ConfigError(
            "hub.tls.mode letsencrypt needs `dlworkshop deploy` (its proxy answers the ACME challenge)",
            fix="use hub.tls.mode: self-signed, or files with a certificate you have",
        )
    if not tls.domain:
        raise ConfigError(
            "hub.tls.domain is missing: the certificate must name what learners open",
            fix="set hub.tls.domain to the host's name or IP address",
        )


def _subject_alternative_name(domain: str) -> x509.GeneralName:
    from cryptography import x509

    try:
        return x509.IPAddress(ipaddress.ip_address(domain))
    except ValueError:
        return x509.DNSName(domain)


def _still_good(cert_file: Path, domain: str) -> bool:
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, x509.ExtensionNotFound):
        return False
    soon = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=30)
    return _subject_alternative_name(domain) in names and cert.not_valid_after_utc > soon


def self_signed(domain: str, folder: Path) -> tuple[Path, Path]:
    """A certificate for `domain` signed by its own key, kept in `folder` (key 0600) and reused
    while it names the domain and has a month left."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    cert_file, key_file = folder / CERT_NAME, folder / KEY_NAME
    if key_file.is_file() and _still_good(cert_file, domain):
        return cert_file, key_file
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=SELF_SIGNED_DAYS))
        .add_extension(x509.SubjectAlternativeName([_subject_alternative_name(domain)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_file, key_file


def local_tls_files(settings: Settings) -> tuple[Path, Path] | None:
    """The certificate chain and key the hub serves, or None where `up` serves plain HTTP
    (on localhost). Supplied files are checked here, before anything starts."""
    check_local_tls(settings)
    tls = settings.hub.tls
    if tls.mode == "none":
        return None
    if tls.mode == "files":
        assert tls.certificate and tls.key  # the settings model requires both in this mode
        for key, path in (("hub.tls.certificate", tls.certificate), ("hub.tls.key", tls.key)):
            if not path.is_file():
                raise ConfigError(f"{key}: {path} does not exist", fix="give the path of the PEM file")
        return tls.certificate.resolve(), tls.key.resolve()
    assert tls.domain  # check_local_tls
    return self_signed(tls.domain, contract.state_dir() / settings.hub.container_name / "tls")
