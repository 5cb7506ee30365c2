"""Claimed names, for shared-code workshops: the first login under a name claims it with a secret
the learner chooses, and later logins under that name need the same secret.

The book is a JSON file on the hub volume (name -> PBKDF2 hash of the secret, never the secret),
mode 0600, so claims survive a hub restart or re-creation. The hub process and an admin's
`dlworkshop accounts release NAME` (which runs this module inside the hub container) both change
it: every change is a read-modify-write under an exclusive lock on a lock file next to it, written
whole and renamed, and every read notices a change made by the other.

    python -m hub.claims release NAME             # forget NAME's secret: the next login claims it again
    python -m hub.claims claim NAME SECRET_HASH   # claim NAME (an admin's: the form refuses to)
    python -m hub.claims list                     # the claimed names, one a line
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from dlworkshop import contract


class ClaimBook:
    """Names and the hashes of their secrets, in a JSON file (re-read when another process changed it)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._claims: dict[str, dict[str, str]] = {}
        self._seen: tuple[int, int, int] | None = None

    def secret_hash(self, name: str) -> str | None:
        """The hash of the secret NAME was claimed with; None when nobody has claimed it."""
        entry = self._current().get(name)
        return entry["secret"] if entry else None

    def names(self) -> list[str]:
        return sorted(self._current())

    def claim(self, name: str, secret_hash: str) -> bool:
        """Claim NAME with a hashed secret; False when someone claimed it first."""
        with self._locked() as claims:
            if name in claims:
                return False
            claims[name] = {"secret": secret_hash, "claimed": datetime.now(timezone.utc).isoformat()}
            return True

    def release(self, name: str) -> bool:
        """Forget NAME's secret; False when it was not claimed. Its server, seat and files stay:
        the next login under NAME claims it again and finds them."""
        with self._locked() as claims:
            return claims.pop(name, None) is not None

    def _stamp(self) -> tuple[int, int, int] | None:
        try:
            found = self.path.stat()
        except FileNotFoundError:
            return None
        return (found.st_ino, found.st_mtime_ns, found.st_size)

    def _current(self) -> dict[str, dict[str, str]]:
        stamp = self._stamp()
        if stamp != self._seen:
            self._claims = json.loads(self.path.read_text()) if stamp else {}
            self._seen = stamp
        return self._claims

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, dict[str, str]]]:
        """The claims, read under the lock; what the block leaves in them is written back."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = os.open(self.path.with_suffix(".lock"), os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self._seen = None  # read afresh under the lock
            claims = dict(self._current())
            before = dict(claims)
            yield claims
            if claims != before:
                self._write(claims)
        finally:
            os.close(lock)  # closing releases the lock

    def _write(self, claims: dict[str, dict[str, str]]) -> None:
        scratch = self.path.with_suffix(".tmp")
        fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(claims, handle, indent=1, sort_keys=True)
        os.replace(scratch, self.path)
        self._claims, self._seen = claims, self._stamp()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Claimed names of a shared-code workshop hub.")
    parser.add_argument("--file", type=Path, default=Path(contract.HUB_DATA) / contract.CLAIMS_FILE)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("release").add_argument("name")
    claim = commands.add_parser("claim")
    claim.add_argument("name")
    # Hashed by the caller (`dlworkshop accounts claim`): the secret itself never reaches the hub.
    claim.add_argument("secret_hash")
    commands.add_parser("list")
    args = parser.parse_args(argv)
    book = ClaimBook(args.file)
    # One line each: `dlworkshop accounts` shows what this prints.
    if args.command == "list":
        print("\n".join(book.names()))
        return 0
    name = args.name.strip().lower()
    if args.command == "release":
        if book.release(name):
            print(f"released {name}: the next login under {name} chooses a new secret")
            return 0
        print(f"{name} is not claimed: nothing to release")
        return 3
    if book.claim(name, args.secret_hash):
        print(f"claimed {name}: log in with that name, the workshop code and this secret")
        return 0
    print(f"{name} is already claimed: release it first")
    return 3


if __name__ == "__main__":
    sys.exit(main())
