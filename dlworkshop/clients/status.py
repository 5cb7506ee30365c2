"""`dlworkshop status`: the room view (hub/room.py) as one table, once or live.

The hub assembles the data (queue places, states, activity, kernels; the engine's figures through
the backend); this module only draws it: totals at the top, one row per person, the rows that need
a helper first (queued, starting, then the busiest running servers).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from dlworkshop.errors import WorkshopError
from dlworkshop.needs import EpisodeNeed, lesson_needs, memory_watch

View = dict[str, Any]
_ORDER = {
    "queued": 0,
    "starting": 1,
    "running": 2,
    "stopping": 3,
    "culled": 4,
    "stopped": 5,
    "not started": 6,
}
_STYLE = {
    "queued": "yellow",
    "starting": "cyan",
    "running": "green",
    "stopping": "magenta",
    "culled": "dim",
    "stopped": "dim",
    "not started": "dim",
}


def size(value: int | None) -> str:
    if value is None:
        return "-"
    amount = float(value)
    for unit in ("B", "K", "M", "G", "T"):
        if amount < 1024 or unit == "T":
            return f"{amount:.0f}{unit}" if unit == "B" or amount >= 100 else f"{amount:.1f}{unit}"
        amount /= 1024
    return f"{value}B"


def parse(moment: str | None) -> datetime | None:
    return datetime.fromisoformat(moment) if moment else None


def ago(moment: str | None, now: datetime) -> str:
    """How long ago, briefly: `just now`, `4 min`, `2 h 05`, `3 d`."""
    then = parse(moment)
    if then is None:
        return "-"
    seconds = max(0, int((now - then).total_seconds()))
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d}"
    return f"{seconds // 86400} d"


def since(moment: str | None, now: datetime) -> str:
    """The local time of the day, or the date when it was another day."""
    then = parse(moment)
    if then is None:
        return "-"
    local = then.astimezone()
    return local.strftime("%H:%M") if local.date() == now.astimezone().date() else local.strftime("%b %d")


def share(used: float | None, limit: float | None, shown: Callable[[float], str]) -> Text:
    """`used / limit`, red at 90% of the limit and above, yellow from 70%."""
    if used is None and limit is None:
        return Text("-")
    text = f"{shown(used) if used is not None else '?'} / {shown(limit) if limit else '-'}"
    if used is None or not limit:
        return Text(text)
    fraction = used / limit
    return Text(text, style="bold red" if fraction >= 0.9 else "yellow" if fraction >= 0.7 else "")


def state_cell(person: View) -> Text:
    state = person["state"]
    label = f"queued #{person['place']}" if state == "queued" and person.get("place") else state
    return Text(label, style=_STYLE.get(state, ""))


def who(person: View) -> Text:
    name = Text(person["name"], style="bold" if person["role"] == "learner" else "")
    if person["user"] != person["name"]:
        name.append(f" ({person['user']})", style="dim")
    if person["role"] in ("admin", "helper", "seat"):
        name.append(f" {person['role']}", style="italic dim")
    return name


def kernels(person: View) -> str:
    counted = person.get("kernels")
    if not counted:
        return "-"
    return f"{counted['busy']} busy {counted['idle']} idle"


def gpu(person: View) -> str:
    held = person.get("gpu")
    if not held:
        return "-"
    devices = ",".join(held.get("devices") or []) or "?"
    return f"{devices} {held['memory_mb']}M" if held.get("memory_mb") else devices


@functools.cache
def measured_needs() -> tuple[EpisodeNeed, ...]:
    """The lesson's measured needs (the notebooks' metadata), read once per run of `status`."""
    return tuple(lesson_needs())


def watch_cell(person: View, needs: list[EpisodeNeed]) -> Text:
    """Kernels killed for memory, and a use near the quota or the episode's measured peak."""
    memory = person.get("memory") or {}
    notebooks = [notebook["path"] for notebook in person.get("notebooks") or []]
    notes = memory_watch(
        memory.get("used"), memory.get("limit"), notebooks, person.get("memory_kills"), needs
    )
    return Text("; ".join(notes), style="bold red") if notes else Text("-")


def sort_key(person: View) -> tuple[int, float, str]:
    cpu = (person.get("cpu") or {}).get("used") or 0.0
    return (_ORDER.get(person["state"], 9), person.get("place") or -cpu, person["name"])


def headline(view: View) -> Text:
    totals = view["totals"]
    line = Text()
    for label, key, style in (
        ("running", "running", "green"),
        ("starting", "starting", "cyan"),
        ("queued", "queued", "yellow"),
        ("stopped", "stopped", ""),
        ("culled", "culled", ""),
        ("not started", "not_started", ""),
    ):
        line.append(f"{totals[key]} ", style=f"bold {style}".strip())
        line.append(f"{label}   ")
    line.append(f"start places free {totals['free_start_places']}/{totals['start_capacity']}")
    if totals.get("free_seats"):
        line.append(f"   ready seats {totals['free_seats']}")
    return line


def host_line(view: View) -> Text:
    host = view.get("host")
    if not host:
        return Text(
            "host: not visible from the hub (its engine runs learners on several machines)", style="dim"
        )
    line = Text("host: ")
    line.append_text(share(host.get("cpu_used"), host["cpus"], lambda v: f"{v:.1f}"))
    line.append(" cores busy   memory ")
    used = host["memory_total"] - host["memory_available"]
    line.append_text(share(used, host["memory_total"], lambda v: size(int(v))))
    line.append("   disk ")
    line.append_text(
        share(host["disk_total"] - host["disk_free"], host["disk_total"], lambda v: size(int(v)))
    )
    line.append(f" ({size(host['disk_free'])} free)")
    return line


def render(view: View, problem: str | None = None, needs: list[EpisodeNeed] | None = None) -> RenderableType:
    """The room as one table, its totals above it; `needs`: the episodes' measured needs (by
    default the notebooks' metadata), which mark learners near them."""
    needs = list(measured_needs()) if needs is None else needs
    now = parse(view["at"]) or datetime.now(timezone.utc)
    title = Text(f"{view['workshop']}  ", style="bold")
    title.append(f"{view['url']}  at {now.astimezone().strftime('%H:%M:%S')}", style="dim")
    parts: list[RenderableType] = [title, headline(view), host_line(view)]
    if view.get("closed"):
        closed = view["closed"]
        parts.append(Text(f"closed since {since(closed['since'], now)}: logins refused", style="bold red"))
    people = sorted(view["people"], key=sort_key)
    rows = []
    for person in people:
        cpu, memory = person.get("cpu") or {}, person.get("memory") or {}
        rows.append(
            [
                who(person),
                state_cell(person),
                Text(since(person["since"], now)),
                Text(ago(person["last_activity"], now)),
                share(cpu.get("used"), cpu.get("limit"), lambda v: f"{v:.2f}"),
                share(memory.get("used"), memory.get("limit"), lambda v: size(int(v))),
                Text(kernels(person)),
                Text(gpu(person)),
                Text(size(person.get("work_bytes"))),
                watch_cell(person, needs),
            ]
        )
    columns = (
        "learner",
        "state",
        "since",
        "active",
        "CPU",
        "memory",
        "kernels",
        "GPU",
        "work",
        "memory watch",
    )
    # A column nobody has a figure in (no GPUs in a CPU workshop) is left out; the name and the
    # state are never cut short, the others wrap in a narrow terminal.
    shown = [i for i, column in enumerate(columns) if i < 4 or any(row[i].plain != "-" for row in rows)]
    table = Table(expand=False, pad_edge=False, show_edge=False)
    for i in shown:
        keep_whole = i < 2
        widest = max((rows[r][i].cell_len for r in range(len(rows))), default=0)
        table.add_column(
            columns[i],
            justify="right" if columns[i] in ("active", "CPU", "memory", "work") else "left",
            no_wrap=keep_whole,
            min_width=max(widest, len(columns[i])) if keep_whole else None,
        )
    for row in rows:
        table.add_row(*(row[i] for i in shown))
    parts.append(table)
    for said in [*view.get("problems", []), *([problem] if problem else [])]:
        parts.append(Text(f"! {said}", style="red"))
    return Group(*parts)


def watch(
    fetch: Callable[[], View],
    show: Callable[[View, str | None], None],
    every: float,
    first: View,
    rounds: int | None = None,
) -> None:
    """Fetch the view every `every` seconds and show it; a failed fetch shows the last view again
    with the reason (the hub may be restarting), and the next round tries again."""
    view = first
    done = 0
    while rounds is None or done < rounds:
        time.sleep(every)
        try:
            view = fetch()
            show(view, None)
        except WorkshopError as failed:
            show(view, f"{failed.message} (retrying)")
        done += 1
