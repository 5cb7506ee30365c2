"""Run ansible/site.yml through ansible-runner, showing task and host as they go, and boil the
result down to a summary and the failures (host, task, message)."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from dlworkshop.errors import WorkshopError

PLAYBOOK = "site.yml"


def ansible_dir() -> Path:
    """The playbook: $DLWORKSHOP_ANSIBLE_DIR, else ansible/ beside the package (a source checkout)."""
    override = os.environ.get("DLWORKSHOP_ANSIBLE_DIR")
    folder = Path(override) if override else Path(__file__).resolve().parents[2] / "ansible"
    if not (folder / PLAYBOOK).is_file():
        raise WorkshopError(
            f"the playbook {folder / PLAYBOOK} is missing",
            fix="run from a checkout of dlworkshop, or set DLWORKSHOP_ANSIBLE_DIR to its ansible/ folder",
        )
    return folder


@dataclass
class Failure:
    host: str
    task: str
    message: str
    unreachable: bool = False

    def __str__(self) -> str:
        what = "unreachable" if self.unreachable else f"task '{self.task}' failed"
        return f"{self.host}: {what}: {self.message}"


@dataclass
class HostStats:
    host: str
    ok: int = 0
    changed: int = 0
    failed: int = 0
    unreachable: int = 0
    skipped: int = 0


@dataclass
class DeployResult:
    status: str
    rc: int
    stats: dict[str, HostStats] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return (
            self.rc == 0
            and not self.failures
            and all(s.failed == 0 and s.unreachable == 0 for s in self.stats.values())
        )


def host_stats(stats: dict[str, dict[str, int]] | None, hosts: list[str]) -> dict[str, HostStats]:
    """ansible-runner's stats ({'ok': {host: n}, 'dark': ...}) per host, every host listed."""
    stats = stats or {}
    names = list(dict.fromkeys([*hosts, *(h for counts in stats.values() for h in (counts or {}))]))
    return {
        host: HostStats(
            host,
            ok=(stats.get("ok") or {}).get(host, 0),
            changed=(stats.get("changed") or {}).get(host, 0),
            failed=(stats.get("failures") or {}).get(host, 0),
            unreachable=(stats.get("dark") or {}).get(host, 0),
            skipped=(stats.get("skipped") or {}).get(host, 0),
        )
        for host in names
    }


def failure_message(result: dict[str, Any]) -> str:
    """The one line worth reading from a failed task's result."""
    message = result.get("msg") or result.get("stderr") or result.get("reason") or ""
    if not message and result.get("results"):  # a loop: the first failed item
        failed = [item for item in result["results"] if isinstance(item, dict) and item.get("failed")]
        if failed:
            return failure_message(failed[0])
    message = str(message).strip() or "failed (no message)"
    first = message.splitlines()[0] if message.splitlines() else message
    return first[:400]


def summary_table(stats: dict[str, HostStats]) -> Table:
    table = Table(title="deploy summary")
    for column in ("host", "ok", "changed", "failed", "unreachable"):
        table.add_column(column, justify="left" if column == "host" else "right")
    for s in stats.values():
        table.add_row(
            s.host,
            str(s.ok),
            str(s.changed),
            f"[red]{s.failed}[/]" if s.failed else "0",
            f"[red]{s.unreachable}[/]" if s.unreachable else "0",
        )
    return table


class EventPrinter:
    """ansible-runner's event handler: one line per task with its hosts' outcomes."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.failures: list[Failure] = []
        self.stats: dict[str, dict[str, int]] = {}

    def __call__(self, event: dict[str, Any]) -> bool:
        kind = event.get("event", "")
        data = event.get("event_data", {}) or {}
        host = data.get("host", "")
        task = data.get("task", "")
        if kind == "playbook_on_task_start":
            self.console.print(f"[bold]TASK[/] {task}", highlight=False)
        elif kind == "runner_on_ok":
            res = data.get("res") or {}
            if "censored" in res:  # no_log: Ansible hides even whether it changed
                outcome = "done (output hidden)"
            else:
                outcome = "[yellow]changed[/]" if res.get("changed") else "[green]ok[/]"
            took = f" ({data['duration']:.0f} s)" if (data.get("duration") or 0) >= 10 else ""
            self.console.print(f"  {host}: {outcome}{took}", highlight=False)
        elif kind == "runner_on_failed" and not data.get("ignore_errors"):
            failure = Failure(host, task, failure_message(data.get("res") or {}))
            self.failures.append(failure)
            self.console.print(f"  {host}: [red]failed[/]: {failure.message}", highlight=False)
        elif kind == "runner_on_unreachable":
            failure = Failure(host, task, failure_message(data.get("res") or {}), unreachable=True)
            self.failures.append(failure)
            self.console.print(f"  {host}: [red]unreachable[/]: {failure.message}", highlight=False)
        elif kind == "playbook_on_stats":
            self.stats = {
                key: data.get(key) or {} for key in ("ok", "changed", "failures", "dark", "skipped")
            }
        return False  # ansible-runner need not keep the events on disk


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def private_run_dir(parent: Path | None = None) -> Path:
    """ansible-runner's folder for this run. Extra vars hold secrets: it is private, removed after
    the run, and a run that was killed has its folder removed by the next one."""
    parent = parent or Path(tempfile.gettempdir()) / f"dlworkshop-deploy-{os.getuid()}"
    parent.mkdir(mode=0o700, exist_ok=True)
    os.chmod(parent, 0o700)
    for leftover in parent.glob("run-*"):
        pid = leftover.name.removeprefix("run-")
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(leftover, ignore_errors=True)
    private = parent / f"run-{os.getpid()}"
    shutil.rmtree(private, ignore_errors=True)
    private.mkdir(mode=0o700)
    return private


def run_playbook(
    inventory: Path,
    extravars: dict[str, Any],
    console: Console,
    check: bool = False,
    limit: str | None = None,
    playbook: str = PLAYBOOK,
) -> DeployResult:
    import ansible_runner

    project = ansible_dir()
    printer = EventPrinter(console)
    private = private_run_dir()
    bin_dir = str(Path(sys.executable).parent)
    cmdline = "--check --diff" if check else None
    try:
        runner = ansible_runner.run(
            private_data_dir=str(private),
            project_dir=str(project),
            playbook=playbook,
            inventory=str(inventory.resolve()),
            extravars=extravars,
            limit=limit,
            cmdline=cmdline,
            envvars={
                "ANSIBLE_CONFIG": str(project / "ansible.cfg"),
                "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}",
                "ANSIBLE_NOCOLOR": "1",
            },
            event_handler=printer,
            quiet=True,
        )
        hosts = sorted({f.host for f in printer.failures})
        result = DeployResult(
            runner.status, runner.rc or 0, host_stats(printer.stats or runner.stats, hosts), printer.failures
        )
        if runner.status != "successful" and not result.failures:
            tail = (runner.stdout.read() if runner.stdout else "").strip().splitlines()[-3:]
            result.failures.append(Failure("-", "ansible-playbook", " ".join(tail) or runner.status))
        return result
    finally:
        shutil.rmtree(private, ignore_errors=True)
