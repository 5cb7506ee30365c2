"""`dlworkshop status` draws the hub's room view: totals and host figures above, one row per
person, the ones that need a helper first, figures against their quotas; a failed refresh keeps
the last view with the reason (dlworkshop/clients/status.py), without a hub."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from dlworkshop.clients.status import ago, render, size, watch
from dlworkshop.errors import WorkshopError

G = 2**30


def person(name: str, state: str, **fields: Any) -> dict[str, Any]:
    return {
        "name": name,
        "user": fields.pop("user", name),
        "role": fields.pop("role", "learner"),
        "state": state,
        "place": None,
        "detail": None,
        "since": "2026-12-01T08:58:00+00:00",
        "last_activity": "2026-12-01T08:59:30+00:00",
        "cpu": None,
        "memory": None,
        "gpu": None,
        "work_bytes": None,
        "kernels": None,
        **fields,
    }


VIEW: dict[str, Any] = {
    "workshop": "Deep learning, December",
    "url": "https://hub.example.org",
    "backend": "docker",
    "at": "2026-12-01T09:00:00+00:00",
    "closed": None,
    "totals": {
        "people": 4,
        "queued": 1,
        "starting": 0,
        "running": 1,
        "stopping": 0,
        "stopped": 0,
        "culled": 1,
        "not_started": 1,
        "start_capacity": 2,
        "free_start_places": 0,
        "free_seats": 0,
    },
    "host": {
        "cpus": 16,
        "cpu_used": 15.5,
        "memory_total": 64 * G,
        "memory_available": 40 * G,
        "disk_total": 500 * G,
        "disk_free": 120 * G,
    },
    "people": [
        person("cy", "culled"),
        person(
            "ada",
            "running",
            user="seat-03",
            cpu={"used": 0.98, "limit": 1.0},
            memory={"used": int(1.2 * G), "limit": 2 * G},
            kernels={"busy": 1, "idle": 1},
            gpu={"devices": ["GPU-1"], "memory_mb": 10000},
            work_bytes=3 * 2**20,
        ),
        person("dan", "not started"),
        person("bo", "queued", place=1),
    ],
    "problems": [],
}


def shown(renderable: Any) -> str:
    console = Console(record=True, width=200, force_terminal=False)
    console.print(renderable)
    return console.export_text()


def test_the_table_puts_the_queue_first_and_shows_figures_against_quotas() -> None:
    text = shown(render(VIEW))
    rows = [
        line for line in text.splitlines() if line.split() and line.split()[0] in ("ada", "bo", "cy", "dan")
    ]
    assert [row.split()[0] for row in rows] == ["bo", "ada", "cy", "dan"]
    bo, ada = rows[0], rows[1]
    assert "queued #1" in bo
    assert "ada (seat-03)" in ada and "0.98 / 1.00" in ada and "1.2G / 2.0G" in ada
    assert "1 busy 1 idle" in ada and "GPU-1 10000M" in ada and "3.0M" in ada
    assert "1 running" in text and "1 queued" in text and "start places free 0/2" in text
    assert "15.5 / 16.0 cores busy" in text and "120G free" in text


def test_a_closed_workshop_and_an_engine_that_did_not_answer_are_said() -> None:
    view = {
        **VIEW,
        "closed": {"since": "2026-12-01T17:00:00+00:00", "message": "m", "by": "end"},
        "host": None,
        "problems": ["the engine's figures: APIError: boom"],
    }
    text = shown(render(view))
    assert "logins refused" in text
    assert "host: not visible" in text
    assert "the engine's figures: APIError: boom" in text


def test_a_failed_refresh_keeps_the_last_view_and_says_why() -> None:
    answers: list[Any] = [WorkshopError("hub unreachable at https://hub.example.org"), VIEW]
    seen: list[tuple[str, str | None]] = []

    def fetch() -> dict[str, Any]:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    watch(fetch, lambda view, problem: seen.append((view["workshop"], problem)), 0, VIEW, rounds=2)
    assert seen[0][1] is not None and "unreachable" in seen[0][1] and "retrying" in seen[0][1]
    assert seen[1] == (VIEW["workshop"], None)


def test_sizes_and_times_are_short() -> None:
    from datetime import datetime, timezone

    now = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
    assert ago("2026-12-01T08:59:30+00:00", now) == "just now"
    assert ago("2026-12-01T08:55:00+00:00", now) == "5 min"
    assert ago("2026-12-01T06:58:00+00:00", now) == "2 h 02"
    assert size(512) == "512B" and size(3 * 2**20) == "3.0M" and size(None) == "-"


def test_learners_near_what_kills_their_kernel_or_killed_for_memory_are_marked() -> None:
    """The episode's measured peak (or the quota, where it comes first), and the container's OOM
    kills, which its server reads from its memory cgroup (dlworkshop_learner/memory.py)."""
    from dlworkshop.needs import EpisodeNeed

    needs = [EpisodeNeed("04-dollar-street", 800 * 2**20, 60.0, "full", 0.05)]
    episode = [{"path": "lessons/04-dollar-street.ipynb", "state": "busy"}]
    people = [
        person("eve", "running", memory={"used": 750 * 2**20, "limit": 2 * G}, notebooks=episode),
        person(
            "fay", "running", memory={"used": 300 * 2**20, "limit": 2 * G}, notebooks=episode, memory_kills=2
        ),
        person("gus", "running", memory={"used": int(1.9 * G), "limit": 2 * G}, notebooks=[]),
        person("hal", "running", memory={"used": 700 * 2**20, "limit": 2 * G}, notebooks=episode),
    ]
    text = shown(render({**VIEW, "people": people}, needs=needs))
    rows = {line.split()[0]: line for line in text.splitlines() if line.split()}
    assert "memory watch" in text
    assert "near the measured peak of 04-dollar-street (750 MiB, peak 800 MiB)" in rows["eve"]
    assert "2 kernels killed for memory" in rows["fay"] and "near" not in rows["fay"]
    assert "near its quota (1946 MiB of 2G)" in rows["gus"]
    assert rows["hal"].rstrip().endswith("-")  # 700 MiB: below 90% of the peak
    # Nobody to watch: no column.
    assert "memory watch" not in shown(render(VIEW, needs=needs))
