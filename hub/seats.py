"""Pre-warmed seats for shared-code workshops.

In shared-code mode nobody's name is known before 09:00, so servers cannot be started for them by
name. The hub instead starts servers for seats (seat-01, seat-02, ...) ahead of time, and a
learner's first login hands them a seat whose server is already running; later logins with the same
name find the same seat. The book of who has which seat lives on the hub's volume, so it survives a
hub restart.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from dlworkshop.settings import Settings

SEAT = re.compile(r"^seat-\d{2,}$")


def seat_names(count: int) -> list[str]:
    return [f"seat-{index:02d}" for index in range(1, count + 1)]


def seat_count(settings: Settings) -> int:
    """Seats pre-warmed in shared-code mode (0 where learners are known by name)."""
    return settings.prewarm_seats


def seats_taken(path: Path) -> set[str]:
    """Seats (and spares) learners hold, as the book on the hub volume says (read by another process)."""
    return set(json.loads(path.read_text()).values()) if path.exists() else set()


class SeatBook:
    """Names and their seats, kept in a JSON file (written whole, then renamed: never half-written)."""

    def __init__(self, path: Path, seats: int) -> None:
        self.path = path
        self.seats = seat_names(seats)
        self.claimed: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}

    def claim(self, name: str, ready: Callable[[str], bool], spares: Sequence[str] = ()) -> str:
        """The learner's seat: theirs from before, else a free seat (or spare, hub/spares.py) whose
        server is ready, else their own name (no ready seat left: their server starts the usual
        way). Either is kept: a returning learner finds their own volume, never a newer seat."""
        if name in self.claimed:
            return self.claimed[name]
        taken = set(self.claimed.values())
        found = next((s for s in [*self.seats, *spares] if s not in taken and ready(s)), name)
        self.claimed[name] = found
        self._save()
        return found

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        scratch = self.path.with_suffix(".tmp")
        scratch.write_text(json.dumps(self.claimed, indent=1, sort_keys=True))
        os.replace(scratch, self.path)
