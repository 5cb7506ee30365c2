"""Why an image build failed, read from its log: which step, and whether a certificate was not
trusted, a host could not be reached, or a download did not match its hash. The closing hint of
`image build` and `up` names that cause and its fix, not one line for every failure.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# BuildKit's plain progress: `#7 [environment 3/5] RUN ...`, `#7 ERROR: ...`, ` > [environment 3/5] RUN ...:`.
_STEP = re.compile(r"^#(?P<number>\d+) \[(?P<step>[^\]]+)\] (?P<what>.*)$")
_STEP_ERROR = re.compile(r"^#(?P<number>\d+) ERROR:")
_FAILED_STEP = re.compile(r"^ > \[(?P<step>[^\]]+)\] (?P<what>.*):$")

# In the order they are tried: a certificate failure also reads as "Max retries exceeded" or
# "Failed to fetch", so it must win over an unreachable host.
_CAUSES = (
    (
        "certificate",
        re.compile(
            r"CERTIFICATE_VERIFY_FAILED|certificate verify failed|SSLCertVerificationError"
            r"|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_GET_ISSUER_CERT|unable to get local issuer certificate"
            r"|self[- ]signed certificate in certificate chain|Certificate verification failed"
            r"|certificate signed by unknown authority|server certificate verification failed",
            re.IGNORECASE,
        ),
    ),
    (
        "hash",
        re.compile(
            r"DO NOT MATCH THE HASHES|Hash Sum mismatch|EINTEGRITY|does not match its recorded"
            r"|(sha256|md5) mismatch: expected",
            re.IGNORECASE,
        ),
    ),
    (
        "unreachable",
        re.compile(
            r"Temporary failure in name resolution|Could not resolve host|Name or service not known"
            r"|Network is unreachable|No route to host|Connection refused|Connection timed out"
            r"|Failed to establish a new connection|ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|ECONNRESET"
            r"|Could not connect to|Unable to connect to|ProxyError|Read timed out|Temporary failure resolving",
            re.IGNORECASE,
        ),
    ),
)


@dataclass(frozen=True)
class BuildFailure:
    step: str | None  # e.g. "[environment 3/5] RUN pip install ...", as BuildKit names it
    cause: str | None  # certificate | hash | unreachable | None (not recognised)
    evidence: str | None  # the log line that shows the cause

    def summary(self) -> str:
        where = f" at {self.step}" if self.step else ""
        what = {
            "certificate": "a TLS certificate was not trusted (certificate verification failed)",
            "hash": "a download did not match its recorded hash",
            "unreachable": "a host could not be reached",
            None: "the step failed",
        }[self.cause]
        return f"{where}: {what}" + (f"\n  {self.evidence}" if self.evidence else "")

    def hint(self, ca_bundle: Path | None) -> str:
        if self.cause == "certificate":
            trusted = (
                f"it trusted {ca_bundle}" if ca_bundle else "it trusted each tool's own CAs (ca_bundle off)"
            )
            return (
                f"the build runs behind a TLS-intercepting proxy or a private mirror whose CA it does not know; "
                f"{trusted}: set image.ca_bundle (or --ca-bundle) to a PEM bundle that holds that CA, or leave "
                "it at auto on a host whose own bundle trusts it"
            )
        if self.cause == "hash":
            return (
                "a mirror, proxy or index served a different file than the lock or the dataset registry "
                "records: check the mirror's copy; if the change upstream is intended, regenerate the lock "
                "(`dlworkshop image lock`) or the registry's hashes (`dlworkshop data lock`)"
            )
        if self.cause == "unreachable":
            return (
                "check this machine's network, DNS and proxy (Docker hands HTTP_PROXY/HTTPS_PROXY from "
                "~/.docker/config.json to builds), or build from mirrors (image.data_mirror, "
                "`dlworkshop image base --mirror`)"
            )
        return "read the build's last lines above"


def diagnose(lines: Iterable[str]) -> BuildFailure:
    """The failed step and the first line of it that names a known cause, from a BuildKit plain
    log (another step's retries that ended well are not the cause)."""
    titles: dict[str, str] = {}
    by_step: dict[str, list[str]] = {}
    failed_number = failed_title = None
    everything = []
    for line in lines:
        line = line.rstrip()
        everything.append(line)
        number = line[1:].split(" ", 1)[0] if line.startswith("#") else None
        if number:
            by_step.setdefault(number, []).append(line)
        if match := _STEP.match(line):
            titles[match["number"]] = f"[{match['step']}] {match['what']}"
        elif (match := _STEP_ERROR.match(line)) and failed_number is None:
            failed_number = match["number"]
        elif (match := _FAILED_STEP.match(line)) and failed_title is None:
            failed_title = f"[{match['step']}] {match['what']}"
    step = titles.get(failed_number or "") or failed_title
    searched = by_step.get(failed_number or "") or everything
    for cause, pattern in _CAUSES:
        for line in searched:
            if pattern.search(line):
                evidence = re.sub(r"^#\d+ [\d.]+ ", "", line).strip()
                return BuildFailure(_short(step), cause, _short(evidence, 240))
    return BuildFailure(_short(step), None, None)


def _short(text: str | None, limit: int = 120) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 3] + "..."
