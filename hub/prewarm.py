"""Pre-warm: learners' servers started before the room arrives.

Runs inside the hub container, as the hub's `prewarm` service (at workshop.start minus
prewarm.minutes_before) and through `dlworkshop prewarm` (now). Servers are asked for through the
hub's REST API, so they pass the same admission queue, limits and GPU quotas as any start. By name
where names are known (accounts, or learners.names); as seats (seat-01, ...) in shared-code mode,
handed out at first login (hub/seats.py). Servers nobody claims are culled like any idle server.
With prewarm.spares, the service then keeps that many ready until workshop.end (hub/spares.py).

    python -m hub.prewarm --now            # start them now, wait until ready, print a table
    python -m hub.prewarm --scheduled      # the hub's service: wait for the time, then as --now
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from dlworkshop import contract
from dlworkshop.hubclient import HubClient, HubError
from dlworkshop.settings import Settings, load_settings
from hub.seats import seat_count, seat_names


def prewarm_names(settings: Settings, accounts_file: Path | None = None) -> list[str]:
    """Whose servers to start: the named learners, the accounts, or the seats."""
    if settings.learners.names:
        return list(settings.learners.names)
    if settings.auth.mode == "accounts":
        from dlworkshop.accounts import read_hashed

        return sorted(read_hashed(accounts_file or Path(contract.hub_accounts())))
    return seat_names(seat_count(settings))


def seconds_until_prewarm(settings: Settings, now: datetime) -> float | None:
    """Seconds to wait before pre-warming (0: now); None when there is nothing to schedule
    (no workshop.start) or the workshop has already begun (learners start their own servers)."""
    start = settings.workshop.start
    if start is None:
        return None
    now = now.replace(tzinfo=None) if start.tzinfo is None else now.astimezone(start.tzinfo)
    if now >= start:
        return None
    at = start - timedelta(minutes=settings.prewarm.minutes_before)
    return max(0.0, (at - now).total_seconds())


@dataclass
class Outcome:
    name: str
    state: str  # ready | already running | failed: why
    seconds: float

    @property
    def failed(self) -> bool:
        return self.state.startswith("failed")


def prewarm(
    hub: HubClient, names: list[str], timeout: float, say: Callable[[str], object] = print
) -> list[Outcome]:
    """Ask for every server, then wait (bounded) until each is ready or has failed."""
    began = time.monotonic()
    outcomes: dict[str, Outcome] = {}
    pending: list[str] = []
    to_start: list[str] = []
    for name in names:
        server = hub.server(name, create_user=True)
        if server and server.get("ready"):
            outcomes[name] = Outcome(name, "already running", 0.0)
            continue
        if not server:
            to_start.append(name)
        pending.append(name)
    # Asked for together: the hub's admission queue, not this loop, decides how many start at once.
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(hub.start, to_start))
    say(f"pre-warming {len(pending)} servers ({len(outcomes)} already running)")
    shown = -1
    while pending and time.monotonic() - began < timeout:
        time.sleep(1)
        for name in list(pending):
            server = hub.server(name)
            if server and server.get("ready"):
                outcomes[name] = Outcome(name, "ready", time.monotonic() - began)
                pending.remove(name)
            elif server is None:  # the hub gave up on it: the start failed
                outcomes[name] = Outcome(name, "failed: the start failed (see the hub's log)", 0.0)
                pending.remove(name)
        ready = sum(1 for o in outcomes.values() if not o.failed)
        if ready != shown:
            shown = ready
            say(f"{ready}/{len(names)} servers ready")
    for name in pending:
        outcomes[name] = Outcome(name, f"failed: not ready after {timeout:.0f} s", 0.0)
    return [outcomes[name] for name in names]


def report(outcomes: list[Outcome]) -> str:
    from rich.console import Console
    from rich.table import Table

    table = Table("learner or seat", "server", "ready after", title="Pre-warmed servers")
    for outcome in outcomes:
        table.add_row(
            outcome.name, outcome.state, f"{outcome.seconds:.0f} s" if outcome.state == "ready" else ""
        )
    console = Console(width=100, force_terminal=False)
    with console.capture() as captured:
        console.print(table)
    return captured.get()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Start learners' servers ahead of the workshop.")
    when = parser.add_mutually_exclusive_group(required=True)
    when.add_argument("--now", action="store_true")
    when.add_argument("--scheduled", action="store_true")
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args(argv)
    settings = load_settings(Path(os.environ.get(contract.CONFIG_ENV) or contract.HUB_SETTINGS))
    token = (
        os.environ.get("JUPYTERHUB_API_TOKEN")
        or (Path(contract.hub_data()) / contract.PREWARM_TOKEN_FILE).read_text().strip()
    )
    api_url = os.environ.get("JUPYTERHUB_API_URL", contract.HUB_API_URL_LOCAL)
    if args.scheduled:
        wait = seconds_until_prewarm(settings, datetime.now().astimezone())
        if wait is None:
            print("prewarm: nothing scheduled (no workshop.start, or the workshop has begun)", flush=True)
        else:
            print(f"prewarm: starting servers in {wait / 60:.0f} minutes", flush=True)
            time.sleep(wait)
            outcomes = prewarm(HubClient.for_api(api_url, token), prewarm_names(settings), args.timeout)
            print(report(outcomes), flush=True)
        if settings.prewarm.spares:
            from hub.spares import keep_spares

            keep_spares(
                HubClient.for_api(api_url, token),
                settings,
                Path(contract.hub_data()),
                say=lambda line: print(line, flush=True),
            )
        # A managed service that exits is restarted by the hub: stay, doing nothing.
        while True:
            time.sleep(3600)
    names = prewarm_names(settings)
    if not names:
        print("prewarm: no learner names known (github login without learners.names): nothing to start")
        return 0
    try:
        outcomes = prewarm(
            HubClient.for_api(api_url, token), names, args.timeout, say=lambda line: print(line, flush=True)
        )
    except HubError as exc:
        # One line, no traceback: `dlworkshop prewarm` shows what this prints.
        print(f"prewarm: the hub's API at {api_url} failed: {exc}", flush=True)
        return 1
    print(report(outcomes), flush=True)
    return 1 if any(o.failed for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
