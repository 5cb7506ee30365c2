"""Workshop accounts: generated usernames and passwords, stored hashed for the hub.

Hashes are scrypt from the standard library (`scrypt$<n>$<r>$<p>$<salt>$<hash>`), so the hub needs
no extra dependency to check them; hashes written before (`pbkdf2_sha256$<iterations>$<salt>$<hash>`)
still verify, each with the parameters stored beside it.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import html
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

# scrypt's cost: N=2**12, r=8, p=1 (4 MiB, 0.015 CPU-s a check on the 2-core CI machine; the
# PBKDF2 at 200,000 iterations it replaces took 0.110: benchmarks/start_profile.py's claim check,
# benchmarks/results/start-profile-20261207T1827Z.json).
# The hash is checked at every login, so a room of 30 arriving at once pays it 30 times on the
# hub's cores in the rush: 0.4 CPU-s instead of 3.2. What it defends against is an offline attack
# on a stolen claims or accounts file, and no hashing saves the secrets it guards there: a 4-digit
# PIN is 10**4 guesses and a generated password (two of 26 words and 3 digits) 676,000, which at
# 200,000 PBKDF2 iterations is still hours on one core and minutes on a GPU. What protects them is
# that the files never leave the hub (mode 0600, on the hub's volume) and the online rate limit of
# every login (hub/login_limits.py). The hash stays memory-hard, so a stolen file is not cracked
# for free; the parameters are stored with each hash, so they may change without a reset.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**12, 8, 1
# What hashes written before used (PBKDF2-HMAC-SHA256): they verify with their stored count.
PBKDF2_ITERATIONS = 200_000
# shared-code mode: the secret a learner claims their name with (a password, or a PIN) is at least this long.
MIN_SECRET_LENGTH = 4
WORDS = [
    "amber",
    "birch",
    "cedar",
    "delta",
    "ember",
    "fjord",
    "grove",
    "harbor",
    "iris",
    "juniper",
    "kelp",
    "lumen",
    "maple",
    "nectar",
    "onyx",
    "pine",
    "quartz",
    "river",
    "sage",
    "tundra",
    "umber",
    "violet",
    "willow",
    "xenon",
    "yarrow",
    "zephyr",
]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


def hash_password(
    password: str, salt: bytes | None = None, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P
) -> str:
    """scrypt of the password, its parameters and salt written with it."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=32)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(digest)}"


def pbkdf2_hash(password: str, salt: bytes | None = None, iterations: int = PBKDF2_ITERATIONS) -> str:
    """A hash as written before scrypt (what an existing claims or accounts file holds)."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return f"pbkdf2_sha256${iterations}${_b64(salt)}${_b64(digest)}"


def verify_password(password_hash: str, password: str) -> bool:
    """Does the password match the hash, with the scheme and parameters stored in it?"""
    scheme, *fields = password_hash.split("$")
    try:
        if scheme == "scrypt" and len(fields) == 5:
            n, r, p, salt, digest = fields
            expected = hash_password(password, base64.urlsafe_b64decode(salt), int(n), int(r), int(p))
        elif scheme == "pbkdf2_sha256" and len(fields) == 3:
            iterations, salt, digest = fields
            expected = pbkdf2_hash(password, base64.urlsafe_b64decode(salt), int(iterations))
        else:
            return False
    except ValueError:  # not numbers, not base64, or parameters scrypt refuses
        return False
    return hmac.compare_digest(expected.rsplit("$", 1)[1], digest)


@dataclass(frozen=True)
class Account:
    username: str
    password: str


def generate(count: int, prefix: str = "learner") -> list[Account]:
    """Readable, random passwords: two words and three digits (easy to type from a paper slip)."""
    width = max(2, len(str(count)))
    return [
        Account(
            f"{prefix}{index:0{width}d}",
            f"{secrets.choice(WORDS)}-{secrets.choice(WORDS)}-{secrets.randbelow(1000):03d}",
        )
        for index in range(1, count + 1)
    ]


def write_sheets(accounts: list[Account], out: Path, workshop: str, url: str) -> dict[str, Path]:
    """The instructor's sheet (plain CSV, 0600), the hub's file (hashed CSV), printable login slips."""
    out.mkdir(parents=True, exist_ok=True)
    plain, hashed, slips = out / "accounts-plain.csv", out / "accounts.csv", out / "login-slips.html"
    for path, rows in (
        (plain, [(a.username, a.password) for a in accounts]),
        (hashed, [(a.username, hash_password(a.password)) for a in accounts]),
    ):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["username", "password" if path == plain else "password_hash"])
            writer.writerows(rows)
    cards = "\n".join(
        f'<div class="slip"><h2>{html.escape(workshop)}</h2><p>{html.escape(url)}</p>'
        f"<p>username <b>{html.escape(a.username)}</b></p><p>password <b>{html.escape(a.password)}</b></p></div>"
        for a in accounts
    )
    slips.write_text(
        "<!doctype html><meta charset=utf-8><title>Login slips</title><style>"
        "body{font-family:sans-serif}.slip{display:inline-block;width:45%;margin:1%;padding:1em;"
        "border:1px dashed #888;page-break-inside:avoid}h2{margin:0 0 .5em;font-size:1.1em}</style>"
        f"{cards}",
        encoding="utf-8",
    )
    return {"plain": plain, "hashed": hashed, "slips": slips}


def read_hashed(path: Path) -> dict[str, str]:
    with path.open(newline="", encoding="utf-8") as handle:
        return {row["username"]: row["password_hash"] for row in csv.DictReader(handle)}
