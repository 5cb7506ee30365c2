"""`dlworkshop loadtest`: simulated learners arriving together, each logging in through the real
login form, starting a server, opening a kernel and running a cell; every step timed.

Targets the hub it is given only; every loop is bounded in count and time, and every server it
started is stopped again at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NamedTuple, TypeVar

from rich.console import Console
from rich.table import Table

from dlworkshop.clients.smoke.jupyter import CellError, JupyterServer, run_cells
from dlworkshop.errors import WorkshopError
from dlworkshop.hubclient import HubError, HubSession

T = TypeVar("T")
STEPS = ("login", "spawn", "kernel", "first_cell")
DEFAULT_CODE = "import numpy\nprint(int(numpy.arange(7).sum()))"
NOTEBOOK = "loadtest.ipynb"  # the notebook each learner opens (its session; the file need not exist)


class Credentials(NamedTuple):
    """What a learner types: a name, the workshop code (or an account's password) and, in
    shared-code mode, the secret their first login claims the name with."""

    name: str
    password: str
    secret: str | None = None


@dataclass
class LearnerRun:
    name: str
    arrival: float
    steps: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    failed_step: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def ready(self) -> float | None:
        """Seconds from login to the first cell's output."""
        return sum(self.steps.values()) if self.ok else None


async def _timed(run: LearnerRun, step: str, coroutine: Awaitable[T]) -> T:
    started = time.monotonic()
    try:
        result = await coroutine
    except HubError as exc:
        run.failed_step = step
        raise RuntimeError(f"{step}: {exc}") from None
    except Exception as exc:
        run.failed_step = step
        raise RuntimeError(f"{step}: {type(exc).__name__}: {exc}") from None
    run.steps[step] = time.monotonic() - started
    return result


async def log_in(hub: HubSession, login: Credentials) -> tuple[str, str]:
    """Log in through the form; returns the hub's name for the learner (a pre-warmed seat in
    shared-code mode may differ from the name typed) and an API token, which the session uses
    from then on."""
    await hub.login(*login)
    user = (await hub.whoami())["name"]
    token = await hub.create_token(user, "dlworkshop loadtest")
    hub.use_token(token)
    return user, token


async def simulate_learner(
    url: str,
    login: Credentials,
    arrival: float,
    code: str,
    timeout: float,
    started: list[tuple[str, str]] | None = None,
) -> LearnerRun:
    """One learner's arrival, timed step by step. Their server is left running (a learner keeps
    working after the first cell); its name and token go into `started` for the cleanup."""
    run = LearnerRun(login.name, arrival)
    await asyncio.sleep(arrival)
    async with HubSession(url, timeout=60) as hub:
        try:
            name, token = await _timed(run, "login", log_in(hub, login))
            if started is not None:
                started.append((name, token))
            # Ask for the server, then follow the spawn page's event stream until ready, as the
            # browser does (no polling delay added to the measurement).
            await _timed(run, "spawn", hub.spawn(name, timeout))
            # A notebook opened as JupyterLab opens one: a session, its kernel started for it.
            kernel = await _timed(run, "kernel", hub.start_session(name, NOTEBOOK))
            server = JupyterServer(f"{url}/user/{name}/", token)
            outputs = await _timed(run, "first_cell", run_cells(server, kernel, [code], cell_timeout=timeout))
            if not outputs[0].stdout.strip():
                raise CellError("the cell printed nothing")
        except (RuntimeError, CellError) as exc:
            run.error = str(exc)
    return run


async def _stop(url: str, name: str, token: str) -> None:
    """Stop the learner's server and wait until the hub says it is gone (a stop may be pending)."""
    async with HubSession(url, token=token, timeout=60) as hub:
        with contextlib.suppress(HubError):
            await hub.stop(name, wait=120)


def credentials(
    count: int,
    prefix: str,
    access_code: str | None,
    accounts: Path | None,
    secret_of: Callable[[str], str] | None = None,
) -> list[Credentials]:
    """The accounts' rows, or (shared-code) names `<prefix>NN` with the code and, from
    `secret_of`, each name's secret (dlworkshop.clients.instructor.secret_for: the same at every run)."""
    if accounts:
        with accounts.open(newline="") as handle:
            rows = [Credentials(row["username"], row["password"]) for row in csv.DictReader(handle)]
        if len(rows) < count:
            raise WorkshopError(
                f"{accounts} has {len(rows)} accounts, fewer than {count} learners",
                fix="generate more with `dlworkshop accounts generate` or lower --learners",
            )
        return rows[:count]
    names = [f"{prefix}{index:02d}" for index in range(1, count + 1)]
    return [Credentials(name, access_code or "", secret_of(name) if secret_of else None) for name in names]


def arrival_times(count: int, ramp: float) -> list[float]:
    """When each of `count` learners arrives, evenly over `ramp` seconds from the first."""
    return [ramp * index / max(count - 1, 1) for index in range(count)]


async def surge(
    url: str, logins: list[Credentials], ramp: float, code: str, timeout: float
) -> list[LearnerRun]:
    """Learners arriving over `ramp` seconds; every server they started is stopped once all of
    them are done (stopping one during the others' arrival would load the host as no room does)."""
    arrivals = arrival_times(len(logins), ramp)
    started: list[tuple[str, str]] = []
    url = url.rstrip("/")
    try:
        return await asyncio.gather(
            *(
                simulate_learner(url, login, at, code, timeout, started)
                for login, at in zip(logins, arrivals, strict=True)
            )
        )
    finally:
        await asyncio.gather(*(_stop(url, name, token) for name, token in started))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=100, method="inclusive")[int(q) - 1]


def summary(runs: list[LearnerRun]) -> dict[str, dict[str, float]]:
    rows = {}
    for step in (*STEPS, "login_to_first_cell"):
        values: list[float] = (
            [r.ready for r in runs if r.ready is not None]
            if step == "login_to_first_cell"
            else [r.steps[step] for r in runs if step in r.steps]
        )
        if values:
            rows[step] = {
                "p50": percentile(values, 50),
                "p95": percentile(values, 95),
                "max": max(values),
                "count": len(values),
            }
    return rows


def write_report(runs: list[LearnerRun], folder: Path, url: str, ramp: float) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    ok = sum(r.ok for r in runs)
    data = {
        "hub": url,
        "learners": len(runs),
        "ramp_seconds": ramp,
        "ran_code": ok,
        "summary": summary(runs),
        "learners_detail": [asdict(r) for r in runs],
    }
    json_path = folder / "loadtest.json"
    json_path.write_text(json.dumps(data, indent=2))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4))
    done = [r for r in runs if r.ok]
    axes.scatter([r.arrival for r in done], [r.ready or 0.0 for r in done], color="#2a9d8f", label="ran code")
    failed = [r for r in runs if not r.ok]
    if failed:
        axes.scatter(
            [r.arrival for r in failed], [0] * len(failed), color="#e63946", marker="x", label="failed"
        )
    axes.set_xlabel("arrival (s after the first learner)")
    axes.set_ylabel("login to first cell (s)")
    axes.set_title(f"{ok}/{len(runs)} learners ran code")
    axes.legend()
    figure.tight_layout()
    png = folder / "loadtest.png"
    figure.savefig(png, dpi=110)
    plt.close(figure)
    return {"json": json_path, "png": png}


def print_table(console: Console, runs: list[LearnerRun]) -> None:
    table = Table(
        "step",
        "p50 (s)",
        "p95 (s)",
        "max (s)",
        "learners",
        title=f"{sum(r.ok for r in runs)}/{len(runs)} learners ran code",
    )
    for step, row in summary(runs).items():
        table.add_row(
            step, f"{row['p50']:.1f}", f"{row['p95']:.1f}", f"{row['max']:.1f}", str(int(row["count"]))
        )
    console.print(table)
    for run in runs:
        if not run.ok:
            console.print(f"[red]failed[/] {run.name}: {run.error}", highlight=False)
