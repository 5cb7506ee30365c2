"""JupyterHub configured from the workshop settings: one small function per concern.

`configure(c, settings)` is all jupyterhub_config.py (and Z2JH's hub.extraConfig) calls. It reads
the hub's state first (secrets on the hub volume, or what the platform that runs the hub holds),
then each `apply_*` sets its own keys on JupyterHub's config object, never appending to another's;
each is unit-tested against a plain traitlets Config. The engine that runs learners' servers is a
backend (hub/backends/); where a platform runs the hub (Z2JH), the hub's database, secrets and
addresses are the platform's and are left alone.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from traitlets.config import LazyConfigValue

from dlworkshop import contract
from dlworkshop.settings import Settings
from hub.backends import Backend, backend_for
from hub.seats import seat_count
from hub.state import HubState

TEMPLATES = Path(__file__).resolve().parent / "templates"
# Where the `hub` package is (the services' working folder): contract.HUB_CODE in the hub image, the
# app folder of the hub's install on a Slurm login node.
HUB_CODE_DIR = Path(__file__).resolve().parent.parent
# JupyterHub's default scopes of a server's own API token (its `server` role).
SERVER_TOKEN_SCOPES = ("users:activity!user", "access:servers!server")
# A learner reading their own name and auth_state (the name they typed, in shared-code mode).
OWN_NAME_SCOPES = ("read:users:name!user", "admin:auth_state!user")


def apply_hub_state(c: Any, state: HubState) -> None:
    """The hub's database and secrets on its volume, and the proxy it starts (not where a platform
    runs the hub: the platform sets these)."""
    c.JupyterHub.db_url = state.database_url
    c.JupyterHub.cookie_secret_file = str(state.cookie_secret_file)
    c.ConfigurableHTTPProxy.auth_token = state.proxy_token
    # The proxy lives and dies with the hub: its pid file must not outlive it (contract.HUB_RUNTIME).
    c.ConfigurableHTTPProxy.pid_file = str(contract.HUB_RUNTIME / "jupyterhub-proxy.pid")


def apply_hub(c: Any, settings: Settings) -> None:
    # Learners' servers outlive a hub restart or upgrade (and starts it interrupts are resumed:
    # hub/spawning.py).
    c.JupyterHub.cleanup_servers = False
    # A start asked for through the API is answered at once, not after up to 10 s: the asker
    # follows the progress stream (as the spawn page does), and a restart in those seconds would
    # cut the request, not the start. The Z2JH chart sets the same.
    earlier = c.JupyterHub.get("tornado_settings")
    c.JupyterHub.tornado_settings = {
        **(earlier if isinstance(earlier, dict) else {}),
        "slow_spawn_timeout": 0,
    }
    c.JupyterHub.template_paths = [str(TEMPLATES)]
    c.JupyterHub.template_vars = {"workshop_name": settings.workshop.name}


def apply_auth(c: Any, settings: Settings, state: HubState) -> None:
    auth = settings.auth
    if auth.mode == "shared-code":
        from hub.auth import SharedCodeAuthenticator

        c.JupyterHub.authenticator_class = SharedCodeAuthenticator
        c.SharedCodeAuthenticator.access_code = (
            auth.access_code.get_secret_value() if auth.access_code else ""
        )
        c.SharedCodeAuthenticator.seats = seat_count(settings)
        c.SharedCodeAuthenticator.seats_file = str(state.seats_file)
        c.SharedCodeAuthenticator.spares_file = str(state.spares_file) if settings.prewarm.spares else ""
        c.SharedCodeAuthenticator.claims_file = str(state.claims_file)
        c.Authenticator.allow_all = True
        if state.auth_state_key:
            # The name a learner typed rides in auth_state, which their server reads through the
            # hub's API to show it in JupyterLab where the server is a seat (see learner_role).
            c.SharedCodeAuthenticator.enable_auth_state = True
            c.CryptKeeper.keys = [state.auth_state_key]
            c.Spawner.server_token_scopes = [*SERVER_TOKEN_SCOPES, *OWN_NAME_SCOPES]
    elif auth.mode == "accounts":
        from hub.auth import AccountsAuthenticator

        c.JupyterHub.authenticator_class = AccountsAuthenticator
        c.AccountsAuthenticator.accounts_file = str(contract.hub_accounts())
        c.Authenticator.allow_all = True
    else:
        github = auth.github
        assert github is not None  # the settings model requires it in this mode
        c.JupyterHub.authenticator_class = "oauthenticator.github.GitHubOAuthenticator"
        c.GitHubOAuthenticator.client_id = github.client_id
        c.GitHubOAuthenticator.client_secret = github.client_secret.get_secret_value()
        if github.callback_url:
            c.GitHubOAuthenticator.oauth_callback_url = github.callback_url
        if github.allowed_organizations:
            c.GitHubOAuthenticator.allowed_organizations = set(github.allowed_organizations)
        else:
            c.GitHubOAuthenticator.allow_all = True
    c.RateLimitedAuthenticator.attempts_per_minute = auth.login_attempts_per_minute
    c.RateLimitedAuthenticator.attempts_per_minute_per_address = auth.login_attempts_per_minute_per_address
    # Admins (instructors, helpers) can open any learner's server: JupyterHub's admin role does.
    c.Authenticator.admin_users = set(auth.admins)


def culler_service(settings: Settings) -> dict[str, Any]:
    culling = settings.culling
    command = [
        sys.executable,
        "-m",
        "jupyterhub_idle_culler",
        # The hub's API inside its own container or pod: under Z2JH the hub's address (its
        # Service) is closed by the hub's NetworkPolicy to pods without the access label.
        f"--url={contract.HUB_API_URL_LOCAL}",
        f"--timeout={culling.idle_timeout}",
        f"--cull-every={culling.every}",
    ]
    if culling.max_age:
        command.append(f"--max-age={culling.max_age}")
    return {"name": contract.CULLER_SERVICE, "command": command}


def prewarm_service(settings: Settings, state: HubState, settings_file: Path) -> dict[str, Any]:
    """Its token serves `dlworkshop prewarm`; with workshop.start it also runs, starting the
    learners' servers ahead of time (hub/prewarm.py)."""
    service: dict[str, Any] = {"name": contract.PREWARM_SERVICE, "api_token": state.prewarm_token}
    if settings.workshop.start is not None:
        service["command"] = [sys.executable, "-m", "hub.prewarm", "--scheduled"]
        service["environment"] = {
            contract.CONFIG_ENV: str(settings_file),
            # The hub's API inside its container or pod, as the culler's (JupyterHub lets a
            # service's environment override the address it would give).
            "JUPYTERHUB_API_URL": contract.HUB_API_URL_LOCAL,
        }
        service["cwd"] = str(HUB_CODE_DIR)
        if contract.HUB_HOME_ENV in os.environ:
            service["environment"][contract.HUB_HOME_ENV] = os.environ[contract.HUB_HOME_ENV]
    return service


def names_service(settings: Settings, state: HubState, proxied_locally: bool) -> list[dict[str, Any]]:
    """shared-code mode: the service through which admins release claimed names (hub/claims.py).
    It listens on the hub's loopback, so only where the hub's own proxy runs beside it (not under
    Z2JH, whose proxy is another pod: there `python -m hub.claims release NAME` in the hub pod)."""
    if settings.auth.mode != "shared-code" or not proxied_locally:
        return []
    command = [sys.executable, "-m", "hub.claims", "--file", str(state.claims_file), "serve"]
    return [
        {
            "name": contract.NAMES_SERVICE,
            "url": f"http://127.0.0.1:{contract.NAMES_SERVICE_PORT}",
            "command": command,
            "cwd": str(HUB_CODE_DIR),
        }
    ]


def learner_role(settings: Settings, state: HubState) -> list[dict[str, Any]]:
    """shared-code mode: JupyterHub's `user` role, plus reading one's own auth_state (the name typed
    at login) so a learner's server can show it; other modes keep JupyterHub's default."""
    if settings.auth.mode != "shared-code" or not state.auth_state_key:
        return []
    return [{"name": "user", "scopes": ["self", "admin:auth_state!user"]}]


def room_service(state: HubState) -> list[dict[str, Any]]:
    """The token `dlworkshop status` reads the room with inside the hub container (not where a
    platform runs the hub: there an admin's or a helper's token reads it through the hub's URL)."""
    if not state.room_token:
        return []
    return [{"name": contract.ROOM_SERVICE, "api_token": state.room_token}]


def staff_roles(settings: Settings, state: HubState) -> list[dict[str, Any]]:
    """Admins and helpers read the room view (hub/room.py); helpers (auth.helpers) also see every
    learner and open their servers (each time logged), without an admin's other rights."""
    auth = settings.auth
    roles = []
    viewers = {"users": sorted({*auth.admins, *auth.helpers})}
    services = {"services": [contract.ROOM_SERVICE]} if state.room_token else {}
    if viewers["users"] or services:
        roles.append({"name": contract.ROOM_ROLE, "scopes": [contract.ROOM_SCOPE], **viewers, **services})
    if auth.helpers:
        roles.append(
            {
                "name": contract.HELPER_ROLE,
                "scopes": ["access:servers", "read:users", "list:users", "read:servers", "admin-ui"],
                "users": sorted(auth.helpers),
            }
        )
    return roles


def apply_room(c: Any, settings: Settings, state: HubState, backend: Backend) -> None:
    """The room view's API route and its scope, the stops it records, and the request log that
    names a helper or admin let into a learner's server (hub/room.py)."""
    from hub.room import handlers, room_for

    room = room_for(settings, state.data, backend)
    c.JupyterHub.custom_scopes = {
        contract.ROOM_SCOPE: {"description": "Read the workshop room's view (dlworkshop status)."}
    }
    c.JupyterHub.extra_handlers = handlers(room)
    c.Spawner.post_stop_hook = room.record_stop
    # Kept beside whatever a platform set there before (Z2JH's hub.config).
    earlier = c.JupyterHub.get("tornado_settings")
    c.JupyterHub.tornado_settings = {
        **(earlier if isinstance(earlier, dict) else {}),
        "log_function": room.log_request,
    }


def apply_closing(c: Any, settings: Settings, state: HubState) -> None:
    """After workshop.end or `dlworkshop close`, logins are refused with where the exported work
    is (hub/closing.py); staff still log in. GitHub's logins are checked after GitHub's answer."""
    from hub.closing import DEFAULT_NOTICE, Closing, refuse_after_the_end

    workshop, auth = settings.workshop, settings.auth
    c.RateLimitedAuthenticator.helper_users = set(auth.helpers)
    c.RateLimitedAuthenticator.closed_file = str(state.closed_file)
    c.RateLimitedAuthenticator.workshop_end = workshop.end.isoformat() if workshop.end else ""
    c.RateLimitedAuthenticator.export_notice = workshop.export_notice or DEFAULT_NOTICE
    if auth.mode == "github":
        closing = Closing(
            state.closed_file,
            workshop.end,
            workshop.export_notice or DEFAULT_NOTICE,
            frozenset([*auth.admins, *auth.helpers]),
        )
        c.Authenticator.post_auth_hook = refuse_after_the_end(closing)
        if auth.helpers:
            c.GitHubOAuthenticator.allowed_users = set(auth.helpers)


# A role's lists that name who holds it and what it grants: merged, not replaced.
ROLE_LISTS = ("scopes", "users", "services", "groups")


def declared(section: Any, name: str) -> list[dict[str, Any]]:
    """What a platform or a site put in a list of JupyterHub's before ours (Z2JH's chart lists
    hub.services and hub.loadRoles before hub.extraConfig runs): a plain list, or a traitlets
    `.append` on a Config that had none."""
    value = section.get(name) if name in section else []
    if isinstance(value, LazyConfigValue):
        value = value.get_value([])
    return [dict(entry) for entry in value] if isinstance(value, list) else []


def merged_services(theirs: list[dict[str, Any]], ours: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every service declared before ours kept, ours added; where both name one service, their
    keys win over ours (under Z2JH the chart's entry carries the API token it keeps)."""
    merged = {service["name"]: service for service in ours}
    for service in theirs:
        merged[service["name"]] = {**merged.get(service["name"], {}), **service}
    return [*merged.values()]


def merged_roles(theirs: list[dict[str, Any]], ours: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every role declared before ours kept, ours added; a role both declare holds the scopes and
    members of both (JupyterHub refuses a role defined twice), their other keys winning."""
    merged = {role["name"]: role for role in ours}
    for role in theirs:
        mine = merged.get(role["name"], {})
        lists = {
            key: list(dict.fromkeys([*mine.get(key, []), *role.get(key, [])]))
            for key in ROLE_LISTS
            if key in mine or key in role
        }
        merged[role["name"]] = {**mine, **role, **lists}
    return [*merged.values()]


def apply_services(
    c: Any, settings: Settings, state: HubState, settings_file: Path, proxied_locally: bool = True
) -> None:
    """The hub's services and their roles (and the learners' role), assembled once, merged with
    those a platform or a site declared before (Z2JH's hub.services and hub.loadRoles)."""
    c.JupyterHub.services = merged_services(
        declared(c.JupyterHub, "services"),
        [
            culler_service(settings),
            prewarm_service(settings, state, settings_file),
            *names_service(settings, state, proxied_locally),
            *room_service(state),
        ],
    )
    c.JupyterHub.load_roles = merged_roles(
        declared(c.JupyterHub, "load_roles"),
        [
            *learner_role(settings, state),
            *staff_roles(settings, state),
            {
                "name": contract.CULLER_SERVICE,
                "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
                "services": [contract.CULLER_SERVICE],
            },
            {
                "name": contract.PREWARM_SERVICE,
                "scopes": ["admin:users", "admin:servers", "list:users"],
                "services": [contract.PREWARM_SERVICE],
            },
        ],
    )


def configure(
    c: Any,
    settings: Settings,
    state: HubState | None = None,
    settings_file: Path = Path(contract.HUB_SETTINGS),
) -> None:
    backend = backend_for(settings)
    state = state or backend.hub_state(c)
    if not backend.platform_runs_hub:
        apply_hub_state(c, state)
    apply_hub(c, settings)
    apply_auth(c, settings, state)
    apply_services(c, settings, state, settings_file, proxied_locally=not backend.platform_runs_hub)
    apply_room(c, settings, state, backend)
    apply_closing(c, settings, state)
    backend.configure(c)
