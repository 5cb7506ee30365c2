"""Claimed names, for shared-code workshops: the first login under a name claims it with a secret
the learner chooses, and later logins under that name need the same secret.

The book is a JSON file on the hub volume (name -> scrypt hash of the secret, never the secret;
dlworkshop/accounts.py says which parameters and why),
mode 0600, so claims survive a hub restart or re-creation. The hub process and an admin's
`dlworkshop accounts release NAME` (which runs this module inside the hub container) both change
it: every change is a read-modify-write under an exclusive lock on a lock file next to it, written
whole and renamed, and every read notices a change made by the other.

    python -m hub.claims release NAME               # forget NAME's secret: the next login claims it again
    python -m hub.claims claim NAME [SECRET_HASH]   # claim NAME (an admin's: the form refuses to);
                                                    # without a hash, asks for the secret
    python -m hub.claims list                       # the claimed names, one a line
    python -m hub.claims serve                      # the hub's `names` service (below)

The `names` service lets the hub's admins release names through the hub's API from anywhere, with
an API token (the instructor's laptop, against a deployed hub): `GET /services/names/claims` lists
the claimed names, `DELETE /services/names/claims/NAME` releases one. JupyterHub checks the token;
only tokens with access to the service (admins') pass.
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
from typing import Any

from dlworkshop import contract
from dlworkshop.accounts import MIN_SECRET_LENGTH, hash_password


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


def serve(book: ClaimBook) -> None:
    """Run the `names` service where JupyterHub says (its URL and prefix in the environment)."""
    import asyncio
    from urllib.parse import urlparse

    from jupyterhub.services.auth import HubAuthenticated
    from tornado import web

    class Claims(HubAuthenticated, web.RequestHandler):
        def write_error(self, status_code: int, **kwargs: Any) -> None:
            """Errors as JupyterHub's API writes them: JSON with a message."""
            error = kwargs.get("exc_info", (None, None, None))[1]
            said = isinstance(error, web.HTTPError) and error.log_message
            message = error.log_message % error.args if said else self._reason
            self.finish({"status": status_code, "message": message})

        @web.authenticated
        def get(self) -> None:
            self.write({"names": book.names()})

        @web.authenticated
        def delete(self, name: str) -> None:
            name = name.strip().lower()
            if not book.release(name):
                raise web.HTTPError(404, "%s is not claimed: nothing to release", name)
            self.write({"released": name})

    prefix = os.environ["JUPYTERHUB_SERVICE_PREFIX"].rstrip("/")
    url = urlparse(os.environ["JUPYTERHUB_SERVICE_URL"])
    app = web.Application([(rf"{prefix}/claims", Claims), (rf"{prefix}/claims/([^/]+)", Claims)])

    async def run() -> None:
        app.listen(url.port or 80, url.hostname or "127.0.0.1")
        await asyncio.Event().wait()

    asyncio.run(run())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Claimed names of a shared-code workshop hub.")
    parser.add_argument("--file", type=Path, default=Path(contract.hub_data()) / contract.CLAIMS_FILE)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("release").add_argument("name")
    claim = commands.add_parser("claim")
    claim.add_argument("name")
    # Hashed by the caller (`dlworkshop accounts claim`): the secret itself never reaches the hub.
    claim.add_argument("secret_hash", nargs="?")
    commands.add_parser("list")
    commands.add_parser("serve")
    args = parser.parse_args(argv)
    book = ClaimBook(args.file)
    if args.command == "serve":
        serve(book)
        return 0
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
    secret_hash = args.secret_hash or _asked_secret_hash()
    if secret_hash is None:
        print(f"the secret must have at least {MIN_SECRET_LENGTH} characters, typed the same twice")
        return 2
    if book.claim(name, secret_hash):
        print(f"claimed {name}: log in with that name, the workshop code and this secret")
        return 0
    print(f"{name} is already claimed: release it first")
    return 3


def _asked_secret_hash() -> str | None:
    """On the hub's host (`docker exec -it <hub> python -m hub.claims claim NAME`): ask twice."""
    import getpass

    secret = getpass.getpass("the secret to log in with: ")
    if len(secret) < MIN_SECRET_LENGTH or getpass.getpass("again: ") != secret:
        return None
    return hash_password(secret)


if __name__ == "__main__":
    sys.exit(main())
