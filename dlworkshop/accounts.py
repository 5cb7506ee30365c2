"""Workshop accounts: generated usernames and passwords, stored hashed for the hub.

Hashes are PBKDF2-HMAC-SHA256 from the standard library (`pbkdf2_sha256$<iterations>$<salt>$<hash>`),
so the hub needs no extra dependency to check them.
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

ITERATIONS = 200_000
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


def hash_password(password: str, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    encode = base64.urlsafe_b64encode
    return f"pbkdf2_sha256${iterations}${encode(salt).decode()}${encode(digest).decode()}"


def verify_password(password_hash: str, password: str) -> bool:
    try:
        scheme, iterations, salt, digest = password_hash.split("$")
    except ValueError:
        return False
    if scheme != "pbkdf2_sha256":
        return False
    expected = hash_password(password, base64.urlsafe_b64decode(salt), int(iterations)).rsplit("$", 1)[1]
    return hmac.compare_digest(expected, digest)


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
