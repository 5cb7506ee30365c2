"""What the instructor asks a running hub during and after the day: the room view
(`dlworkshop status`) and closing its logins (`dlworkshop close`).

Two ways to the same hub code (hub/room.py, hub/closing.py): the hub of `dlworkshop up` on this
machine is asked from inside its container (docker exec, with the hub's own room token: nothing
to create or copy), a deployed hub through its public URL with an admin's or a helper's API token
from $DLWORKSHOP_HUB_TOKEN (created on the hub's /hub/token page): no SSH.
"""

from __future__ import annotations

import json
import os
from typing import Any

from dlworkshop import contract
from dlworkshop.errors import WorkshopError
from dlworkshop.settings import Settings

TOKEN_ENV = "DLWORKSHOP_HUB_TOKEN"
ROOM_PATH = f"/hub/api/{contract.ROOM_API}"


def hub_token(hub: str, who: str = "an admin's or a helper's") -> str:
    token = os.environ.get(TOKEN_ENV)
    if not token:
        raise WorkshopError(
            f"--hub needs {who} API token in ${TOKEN_ENV}",
            fix=f"log in to {hub} as one, create a token at {hub.rstrip('/')}/hub/token and export it",
        )
    return token


def _through_the_api(hub: str, method: str, path: str, who: str, **kwargs: Any) -> dict[str, Any]:
    from dlworkshop.hubclient import HubClient, HubError

    try:
        with HubClient(hub, hub_token(hub, who)) as client:
            return dict(client.request(method, path, **kwargs).json())
    except HubError as refused:
        fixes = {
            403: f"the token must be {who} (auth.admins, auth.helpers), created on the hub's token page",
            404: "this hub runs a dlworkshop without the room view: deploy this version (`dlworkshop deploy`)",
        }
        raise HubError(refused.message, refused.status, fixes.get(refused.status or 0)) from None


def _in_the_local_hub(settings: Settings, command: list[str]) -> str:
    """Run a hub module inside the hub container of `dlworkshop up`; its standard output."""
    from dlworkshop.local.local_hub import running_hub

    _, hub = running_hub(settings)
    result = hub.exec_run(command, workdir=str(contract.HUB_HOME), demux=True)
    out, err = (part.decode(errors="replace").strip() if part else "" for part in result.output)
    if result.exit_code != 0:
        raise WorkshopError(
            f"the hub could not answer `{' '.join(command[2:])}`: {err or out}",
            fix="re-create the hub with `dlworkshop up` (learners' servers keep running); see `docker logs` of the hub",
        )
    return out


def room_view(settings: Settings, hub: str | None = None) -> dict[str, Any]:
    """The hub's room view (hub/room.py): the JSON `dlworkshop status --json` prints."""
    if hub:
        return _through_the_api(hub, "GET", ROOM_PATH, "an admin's or a helper's")
    said = _in_the_local_hub(settings, ["python", "-m", "hub.room"])
    try:
        return dict(json.loads(said))
    except ValueError:
        raise WorkshopError(
            f"the hub's room view is not JSON: {said[:200]}", fix="see `docker logs` of the hub"
        ) from None


def close(settings: Settings, hub: str | None = None, message: str | None = None) -> str:
    """Refuse learners' logins from now on (hub/closing.py); one line saying so."""
    if hub:
        mark = _through_the_api(
            hub, "POST", f"{ROOM_PATH}/close", "an admin's", json={"message": message or ""}
        )["closed"]
        return f"closed since {mark['since']}: logins are refused, except admins' and helpers'"
    command = ["python", "-m", "hub.closing", "close"]
    return _in_the_local_hub(settings, command + (["--message", message] if message else []))


def reopen(settings: Settings, hub: str | None = None) -> str:
    if hub:
        answer = _through_the_api(hub, "DELETE", f"{ROOM_PATH}/close", "an admin's")
        if answer["closed"]:
            return f"still closed: workshop.end ({answer['closed']['since']}) has passed"
        return "reopened: logins are accepted again" if answer["reopened"] else "the workshop was not closed"
    said = _in_the_local_hub(settings, ["python", "-m", "hub.closing", "reopen"])
    end = settings.workshop.end
    if end is not None:
        from datetime import datetime, timezone

        now = datetime.now(timezone.utc) if end.tzinfo else datetime.now()
        if now >= end:
            return f"still closed: workshop.end ({end.isoformat()}) has passed"
    return said
