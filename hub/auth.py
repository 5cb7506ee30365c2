"""Workshop logins: a shared access code with claimed names, or generated accounts (GitHub goes
through OAuthenticator).

TLJH's FirstUseAuthenticator lets the first login under a name set its password; shared-code mode
does the same with two differences that keep it here rather than on that package: the workshop
code is still required (the hub is not open to anyone who finds its URL), and a name maps to a
pre-warmed seat rather than being the JupyterHub user, so the secret belongs to the name
(hub/claims.py), not to a JupyterHub user.
"""

from __future__ import annotations

import asyncio
import hmac
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from jupyterhub.auth import Authenticator
from tornado import web
from traitlets import Instance, Integer, Set, Unicode, default

from dlworkshop import contract
from dlworkshop.accounts import MIN_SECRET_LENGTH, hash_password, read_hashed, verify_password
from hub.claims import ClaimBook
from hub.closing import DEFAULT_NOTICE, Closing
from hub.login_limits import LoginLimiter
from hub.seats import SEAT, SeatBook
from hub.spares import read_spares

NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


class LoginRefused(Exception):
    """A refused login; its message is what the login form tells the learner."""


class RateLimitedAuthenticator(Authenticator):
    """Failures are delayed, never locked out, counted per (address, name) and per address
    (hub/login_limits.py): a classroom behind one NAT shares one address."""

    attempts_per_minute = Integer(
        5,
        config=True,
        help="Failed logins under one name from one address per minute before its failures are delayed.",
    )
    attempts_per_minute_per_address = Integer(
        30,
        config=True,
        help="Failed logins from one address per minute before every failure from it is delayed.",
    )

    limiter = Instance(LoginLimiter, help="Counts failures and delays their answers.")

    # The workshop's staff beside its admins, and its end (hub/closing.py).
    helper_users = Set(Unicode(), config=True, help="Helpers (auth.helpers): staff, but not admins.")
    closed_file = Unicode("", config=True, help="The hub's close mark (`dlworkshop close`); empty: none.")
    workshop_end = Unicode("", config=True, help="workshop.end (ISO 8601): logins end then.")
    export_notice = Unicode(
        DEFAULT_NOTICE, config=True, help="Where learners get their exported work, told at a refused login."
    )

    @property
    def staff(self) -> frozenset[str]:
        return frozenset(self.admin_users | self.helper_users)

    @property
    def closing(self) -> Closing:
        end = datetime.fromisoformat(self.workshop_end) if self.workshop_end else None
        return Closing(Path(self.closed_file), end, self.export_notice, self.staff)

    @default("limiter")
    def _limiter_from_the_limits(self) -> LoginLimiter:
        return LoginLimiter(self.attempts_per_minute, self.attempts_per_minute_per_address, log=self.log)

    async def authenticate(self, handler: Any, data: dict[str, Any]) -> str | dict[str, Any]:
        return await self.checked(handler, data)

    async def checked(self, handler: Any, data: dict[str, Any]) -> str:
        """`check`, one attempt at a time per (address, name), its refusals held and answered as
        HTTP 403 with the reason."""
        address = handler.request.remote_ip if handler is not None else "local"
        name = str(data.get("username", "")).strip().lower()
        counted = name[:64]  # what is counted and logged: a name typed can be any length
        if self.closed_file or self.workshop_end:
            # The workshop is over: said before any secret is checked or name claimed, and not a failure.
            refusal = self.closing.refusal(name)
            if refusal:
                raise web.HTTPError(403, "%s", refusal)
        async with self.limiter.turn(address, counted):
            try:
                user = await self.check(name, data)
            except LoginRefused as refused:
                await self.limiter.refused(address, counted)
                # The login form shows the message (JupyterHub renders it in place of its own).
                raise web.HTTPError(403, "%s", str(refused)) from None
        self.limiter.succeeded(address, counted)
        return user

    async def check(self, name: str, data: dict[str, Any]) -> str:
        """The JupyterHub user for these credentials; LoginRefused says why not."""
        raise NotImplementedError


class SharedCodeAuthenticator(RateLimitedAuthenticator):
    """A learner types the workshop's code, a name, and a secret: the first login under a name
    claims it with that secret; later logins under it need the same secret."""

    access_code = Unicode(config=True, help="The code every learner types.")
    seats = Integer(0, config=True, help="Pre-warmed seats (seat-01, ...) handed out at first login.")
    seats_file = Unicode("", config=True, help="JSON file recording which name has which seat.")
    spares_file = Unicode(
        "", config=True, help="JSON file of the spares the hub started (hub/spares.py); empty: none."
    )
    claims_file = Unicode(
        str(Path(contract.hub_data()) / contract.CLAIMS_FILE),
        config=True,
        help="JSON file of claimed names and their secrets' hashes (hub/claims.py).",
    )
    # Read by hub/templates/login.html to label the form for this mode.
    login_explainer = (
        "First time: choose a name and a secret. Later: the same name and secret. "
        "Every time: the workshop code."
    )
    username_label = "Your name (letters, digits, - or _)"
    password_label = "Workshop code"
    secret_label = f"Your secret (a password or PIN, at least {MIN_SECRET_LENGTH} characters)"

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self._seat_book: SeatBook | None = None
        self._claims: ClaimBook | None = None

    @property
    def claims(self) -> ClaimBook:
        if self._claims is None:
            self._claims = ClaimBook(Path(self.claims_file))
        return self._claims

    async def check(self, name: str, data: dict[str, Any]) -> str:
        if not NAME.match(name):
            raise LoginRefused(
                "Choose a name of up to 32 letters, digits, - or _, starting with a letter or digit."
            )
        # Seat names belong to the hub's pre-warmed servers; nobody logs in as one.
        if SEAT.match(name):
            raise LoginRefused("Names like seat-01 belong to the hub's own servers: choose another name.")
        code = str(data.get("password", ""))
        if not self.access_code or not hmac.compare_digest(code.encode(), self.access_code.encode()):
            raise LoginRefused("That is not the workshop code.")
        await self._check_claim(name, str(data.get("secret", "")))
        return name

    async def _check_claim(self, name: str, secret: str) -> None:
        stored = self.claims.secret_hash(name)
        if stored is None:
            # An admin's (or helper's) name would give whoever claims it first every learner's server.
            if name in self.staff:
                raise LoginRefused(
                    f"{name} is an instructor's name: the instructor claims it first "
                    f"(`dlworkshop accounts claim {name}`)."
                )
            if len(secret) < MIN_SECRET_LENGTH:
                raise LoginRefused(
                    f"First login as {name}: choose a secret of at least {MIN_SECRET_LENGTH} "
                    "characters; you will type it again at every login."
                )
            # Hashing takes about a hundredth of a second of CPU (dlworkshop/accounts.py says why
            # no more): off the hub's event loop all the same.
            if self.claims.claim(name, await asyncio.to_thread(hash_password, secret)):
                self.log.info("the name %s is claimed", name)
                return
            stored = self.claims.secret_hash(name) or ""  # claimed by someone else a moment ago
        if not await asyncio.to_thread(verify_password, stored, secret):
            raise LoginRefused(
                f"The name {name} is taken, and that is not its secret. If it is yours, type the "
                "secret you chose (forgotten? the instructor can release the name); if not, "
                "choose another name."
            )

    async def authenticate(self, handler: Any, data: dict[str, Any]) -> dict[str, Any]:
        name = await self.checked(handler, data)
        seat = name
        # Staff keep their own name: their roles (admin, helper) are the name's, not a seat's.
        if (self.seats or self.spares_file) and handler is not None and name not in self.staff:
            if self._seat_book is None:
                self._seat_book = SeatBook(Path(self.seats_file), self.seats)

            def ready(seat: str) -> bool:
                user = handler.find_user(seat)
                return bool(user is not None and user.spawner.ready)

            spares = read_spares(Path(self.spares_file)) if self.spares_file else []
            seat = self._seat_book.claim(name, ready, spares)
            if seat != name:
                self.log.info("%s has %s (a pre-warmed server)", name, seat)
        # The name typed, for JupyterLab to show when the server is a seat (dlworkshop_learner/identity.py).
        return {"name": seat, "auth_state": {"display_name": name}}


class AccountsAuthenticator(RateLimitedAuthenticator):
    """Usernames and hashed passwords from `dlworkshop accounts generate`."""

    accounts_file = Unicode(config=True, help="CSV with username,password_hash columns.")

    async def check(self, name: str, data: dict[str, Any]) -> str:
        hashes = read_hashed(Path(self.accounts_file))
        password = str(data.get("password", ""))
        if name in hashes and await asyncio.to_thread(verify_password, hashes[name], password):
            return name
        raise LoginRefused("Invalid username or password.")
