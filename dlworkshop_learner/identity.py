"""JupyterLab shows the name a learner typed at login, also where their server is a pre-warmed seat.

In shared-code mode a learner's first login may hand them a seat (seat-07) whose server started
before anyone knew their name, so its URL and JupyterHub user keep the seat's name. The hub keeps the
name typed in that user's auth_state (hub/auth.py) and lets the server's own API token read it
(hub/config.py). This server extension wraps JupyterHub's identity provider so that the identity
JupyterLab shows (the top bar's user menu, `/api/me`) carries that name. It does nothing outside
jupyterhub-singleuser, and nothing where the hub has no typed name (accounts, GitHub).
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from jupyterhub.singleuser.extension import JupyterHubIdentityProvider
from tornado.httpclient import AsyncHTTPClient, HTTPClientError

# A seat changes hands only when an admin releases a name: a short cache spares the hub a request
# per request.
CACHE_SECONDS = 30.0


def initials_of(name: str) -> str:
    parts = [part for part in name.replace("_", "-").split("-") if part]
    return "".join(part[0] for part in parts[:2]).upper() or name[:1].upper()


class TypedNameIdentityProvider(JupyterHubIdentityProvider):
    """JupyterHub's identity provider; the server owner's identity shows the name they typed."""

    _typed: tuple[float, str | None] = (0.0, None)

    async def get_user(self, handler: Any) -> Any:
        user = await super().get_user(handler)
        owner = os.environ.get("JUPYTERHUB_USER")
        if user is None or owner is None or user.username != owner:
            return user  # an admin visiting: their own identity
        typed = await self.typed_name(owner)
        if typed and typed != user.username:
            user.name = user.display_name = typed
            user.initials = initials_of(typed)
        return user

    async def typed_name(self, owner: str) -> str | None:
        """The name typed at login, from the owner's auth_state (cached); None when there is none."""
        expires, typed = self._typed
        if time.monotonic() < expires:
            return typed
        url = f"{self.hub_auth.api_url.rstrip('/')}/users/{owner}"
        headers = {"Authorization": f"token {self.hub_auth.api_token}"}
        try:
            answer = await AsyncHTTPClient().fetch(url, headers=headers, request_timeout=5)
            state = json.loads(answer.body).get("auth_state") or {}
            typed = state.get("display_name") if isinstance(state, dict) else None
        except (OSError, HTTPClientError, ValueError) as exc:
            self.log.debug("dlworkshop: no typed name for %s from the hub: %s", owner, exc)
            typed = None
        self._typed = (time.monotonic() + CACHE_SECONDS, typed)
        return typed


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "dlworkshop_learner.identity"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    """Put the wrapping provider in place of JupyterHub's, sharing its hub connection (jupyterhub-
    singleuser sets its own provider class over any configured one, so it is swapped here, once
    the server is set up)."""
    current = serverapp.identity_provider
    if type(current) is not JupyterHubIdentityProvider:
        return
    provider = TypedNameIdentityProvider(parent=serverapp, hub_auth=current.hub_auth)
    serverapp.identity_provider = provider
    serverapp.web_app.settings["identity_provider"] = provider
