"""`dlworkshop smoke-test`: will this work at 09:00?"""

from __future__ import annotations

import os
from pathlib import Path
from typing import cast

import typer
from rich.console import Console

from dlworkshop.cli import app
from dlworkshop.cli.config import ConfigOption
from dlworkshop.cli.extras import require_extra

console = Console(soft_wrap=True)


@app.command("smoke-test")
def smoke_test_command(
    hub: str | None = typer.Option(None, "--hub", help="URL of the deployed hub."),
    image: str | None = typer.Option(
        None, "--image", help="Test a learner image in a local container instead."
    ),
    episodes: list[str] | None = typer.Option(
        None, "--episodes", help="Only these episodes (name or number; repeat)."
    ),
    size: str = typer.Option("smoke", "--size", help="smoke (short runs) or full (the lesson's own sizes)."),
    report: Path = typer.Option(
        Path("smoke-report"), "--report", help="Folder for report.json/html and chart.png."
    ),
    password: str | None = typer.Option(
        None, "--password", help="Smoke-test learner's password (accounts mode)."
    ),
    config: Path | None = ConfigOption,
) -> None:
    """Log in, spawn, check packages, data, threads and GPU, and train every episode against its budget."""
    require_extra("report", "smoke-test")
    from dlworkshop.clients.smoke.run import SmokeOptions, smoke_test
    from dlworkshop.errors import WorkshopError
    from dlworkshop.lessons import Size
    from dlworkshop.settings import load_settings

    if size not in ("smoke", "full"):
        raise WorkshopError(f"unknown size {size!r}", fix="use --size smoke or --size full")
    options = SmokeOptions(
        hub,
        image,
        episodes,
        cast(Size, size),
        report,
        password=password,
        token=os.environ.get("DLWORKSHOP_HUB_TOKEN"),
    )
    smoke_test(load_settings(config), options, console)


@app.command("loadtest")
def loadtest_command(
    hub: str = typer.Option(..., "--hub", help="URL of the hub."),
    learners: int = typer.Option(10, "--learners", min=1, max=500, help="Simulated learners."),
    ramp: float = typer.Option(10.0, "--ramp", min=0, help="They arrive spread over this many seconds."),
    code: str | None = typer.Option(None, "--code", help="The cell each learner runs."),
    accounts: Path | None = typer.Option(None, "--accounts", help="Plain accounts CSV (accounts mode)."),
    prefix: str = typer.Option(
        "loadtest-", "--prefix", help="Names of simulated learners (shared-code mode)."
    ),
    timeout: float = typer.Option(
        600, "--timeout", help="Give up on a learner's step after this many seconds."
    ),
    report: Path = typer.Option(
        Path("loadtest-report"), "--report", help="Folder for loadtest.json and .png."
    ),
    config: Path | None = ConfigOption,
) -> None:
    """Simulate learners arriving together: login, start server, open a kernel, run a cell; time each step."""
    require_extra("report", "loadtest")
    import asyncio

    from dlworkshop.clients import instructor, loadtest
    from dlworkshop.errors import CheckFailed
    from dlworkshop.settings import load_settings

    settings = load_settings(config)
    code_word = settings.auth.access_code.get_secret_value() if settings.auth.access_code else None
    # shared-code: each simulated learner claims its name with a secret only this machine knows.
    secret_of = instructor.secret_for if settings.auth.mode == "shared-code" and not accounts else None
    logins = loadtest.credentials(learners, prefix, code_word, accounts, secret_of)
    with console.status(f"{learners} learners arriving within {ramp:g} s at {hub}"):
        runs = asyncio.run(loadtest.surge(hub, logins, ramp, code or loadtest.DEFAULT_CODE, timeout))
    loadtest.print_table(console, runs)
    files = loadtest.write_report(runs, report, hub, ramp)
    console.print("report: " + ", ".join(str(path) for path in files.values()))
    failed = [run for run in runs if not run.ok]
    if failed:
        raise CheckFailed(
            f"{len(failed)} of {learners} learners did not run code", fix=f"see {files['json']}"
        )
