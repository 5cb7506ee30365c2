"""The certificate authorities downloads trust, on this machine and in every image build step.

Behind a TLS-intercepting proxy the host trusts the proxy's CA through its system bundle, but pip
(certifi), requests, Node and a fresh image's own bundle do not. So by default (`auto`) the image
build steps (apt, pip, npm) and the data downloads trust the bundle this host itself trusts; `off`
leaves each tool to its own, and a path names a PEM bundle to trust instead (it replaces the
defaults: give a complete bundle, as the system's is).
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from typing import Literal

from dlworkshop.errors import WorkshopError

CaBundleSetting = Literal["auto", "off"] | Path

# Where systems keep their bundle when OpenSSL's default path does not name one: Debian and
# Ubuntu, Fedora and RHEL, openSUSE, Alpine and macOS.
SYSTEM_BUNDLES = (
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
)


def host_ca_bundle() -> Path | None:
    """The bundle this host trusts: $SSL_CERT_FILE or $REQUESTS_CA_BUNDLE when set (as OpenSSL and
    requests read them), else OpenSSL's default file, else the first system bundle that exists."""
    candidates = [os.environ.get("SSL_CERT_FILE"), os.environ.get("REQUESTS_CA_BUNDLE")]
    defaults = ssl.get_default_verify_paths()
    candidates += [defaults.cafile, defaults.openssl_cafile, *SYSTEM_BUNDLES]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate).resolve()
    return None


def resolve_ca_bundle(setting: CaBundleSetting) -> Path | None:
    """The PEM file to trust for `setting` (image.ca_bundle, --ca-bundle), or None for each tool's
    own defaults."""
    if setting == "off":
        return None
    if setting == "auto":
        return host_ca_bundle()
    path = Path(setting)
    if not path.is_file():
        raise WorkshopError(
            f"CA bundle {path} does not exist",
            fix="give the path of a PEM bundle, or `auto` for this host's own (the default)",
        )
    return path


def parse_ca_bundle_option(value: str) -> CaBundleSetting:
    """A command line's --ca-bundle: auto, off, or a path."""
    if value == "auto":
        return "auto"
    if value == "off":
        return "off"
    return Path(value)
