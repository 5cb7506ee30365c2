"""Workshop logins: a shared access code, or generated accounts (GitHub goes through OAuthenticator)."""

from __future__ import annotations

import hmac
import re
import time
from collections import defaultdict, deque
from pathlib import Path
from typing import Any

from jupyterhub.auth import Authenticator
from traitlets import Integer, Unicode

from dlworkshop.accounts import read_hashed, verify_password
from hub.seats import SEAT, SeatBook

NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


class RateLimitedAuthenticator(Authenticator):
    """Refuses more than `attempts_per_minute` failed logins from one address."""

    attempts_per_minute = Integer(
        10, config=True, help="Failed logins allowed per client address per minute."
    )

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self._failures: dict[str, deque[float]] = defaultdict(deque)

    def _too_many(self, address: str) -> bool:
        window = self._failures[address]
        while window and window[0] < time.monotonic() - 60:
            window.popleft()
        return len(window) >= self.attempts_per_minute

    def _failed(self, address: str) -> None:
        self._failures[address].append(time.monotonic())

    async def authenticate(self, handler: Any, data: dict[str, str]) -> str | None:
        address = handler.request.remote_ip if handler is not None else "local"
        if self._too_many(address):
            self.log.warning("login rate limit reached for %s", address)
            return None
        name = self.check(data.get("username", "").strip().lower(), data.get("password", ""))
        if name is None:
            self._failed(address)
        return name

    def check(self, username: str, password: str) -> str | None:
        raise NotImplementedError


class SharedCodeAuthenticator(RateLimitedAuthenticator):
    """A learner picks a name and types the workshop's access code."""

    access_code = Unicode(config=True, help="The code every learner types.")
    seats = Integer(0, config=True, help="Pre-warmed seats (seat-01, ...) handed out at first login.")
    seats_file = Unicode("", config=True, help="JSON file recording which name has which seat.")
    # Read by hub/templates/login.html to label the form for this mode.
    username_label = "Choose a short name (letters, digits, - or _)"
    password_label = "Workshop access code"

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self._seat_book: SeatBook | None = None

    def check(self, username: str, password: str) -> str | None:
        # Seat names belong to the hub's pre-warmed servers; nobody logs in as one.
        if not NAME.match(username) or SEAT.match(username) or not self.access_code:
            return None
        if hmac.compare_digest(password.encode(), self.access_code.encode()):
            return username
        return None

    async def authenticate(self, handler: Any, data: dict[str, str]) -> str | None:
        name = await super().authenticate(handler, data)
        if name is None or not self.seats or handler is None:
            return name
        if self._seat_book is None:
            self._seat_book = SeatBook(Path(self.seats_file), self.seats)

        def ready(seat: str) -> bool:
            user = handler.find_user(seat)
            return bool(user is not None and user.spawner.ready)

        seat = self._seat_book.claim(name, ready)
        if seat != name:
            self.log.info("%s has %s (a pre-warmed server)", name, seat)
        return seat


class AccountsAuthenticator(RateLimitedAuthenticator):
    """Usernames and hashed passwords from `dlworkshop accounts generate`."""

    accounts_file = Unicode(config=True, help="CSV with username,password_hash columns.")

    def check(self, username: str, password: str) -> str | None:
        hashes = read_hashed(Path(self.accounts_file))
        if username in hashes and verify_password(hashes[username], password):
            return username
        return None
