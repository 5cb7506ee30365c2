"""Secrets for the learners the instructor's own tools log in as (the smoke-test learner, the load
test's simulated learners), in shared-code mode where the first login under a name claims it.

Each is derived from one random key kept on the instructor's machine (0600, in
`contract.state_dir()`), so every run from that machine logs in under the same names with the same
secrets, and nobody in the room, who has the workshop code but not the key, can take them over.
From another machine: copy the key file, or release the names first (`dlworkshop accounts release`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from dlworkshop import contract


def key_file() -> Path:
    return contract.state_dir() / contract.INSTRUCTOR_KEY_FILE


def instructor_key(path: Path | None = None) -> bytes:
    """The key, created the first time (mode 0600)."""
    path = path or key_file()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another run made it a moment ago
            return path.read_bytes().strip()
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    return path.read_bytes().strip()


def secret_for(name: str, key: bytes | None = None) -> str:
    """The secret `name` claims its name with (20 characters, URL-safe)."""
    digest = hmac.new(key or instructor_key(), name.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()[:20]
