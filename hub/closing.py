"""The end of the workshop: after `workshop.end`, or once an admin closed it (`dlworkshop close`),
every login is refused with a message that says where to get the exported work, and generated
accounts and claimed names log in no more. Admins and helpers still log in (to export, to help
the last learner). Servers that run keep running: `dlworkshop down` ends them.

The closed mark is a JSON file on the hub volume (when, and the message the admin gave), so it
survives a restart or a re-created hub; the hub process re-reads it at each login, so an admin's
`python -m hub.closing close` in the hub container takes effect at once:

    python -m hub.closing close [--message TEXT]   # refuse logins from now on
    python -m hub.closing reopen                   # take the mark back (workshop.end still holds)
    python -m hub.closing show                     # whether, since when, and the message
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from dlworkshop import contract

DEFAULT_NOTICE = "Your instructor keeps a copy of your work folder: ask them for it."


def now_like(moment: datetime) -> datetime:
    """Now, comparable with `moment`: a naive time is the host's local time (the hub container
    has the host's /etc/localtime), an aware one is compared in UTC."""
    return datetime.now(timezone.utc) if moment.tzinfo else datetime.now()


def when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M")


@dataclass(frozen=True)
class Closing:
    """Whether the workshop is over, and what a refused login is told."""

    closed_file: Path
    end: datetime | None = None
    notice: str = DEFAULT_NOTICE
    staff: frozenset[str] = field(default_factory=frozenset)
    clock: Callable[[datetime], datetime] = field(default=now_like, compare=False)

    def mark(self) -> dict[str, str] | None:
        """The admin's close mark, when there is one."""
        try:
            return dict(json.loads(self.closed_file.read_text()))
        except (FileNotFoundError, ValueError):
            return None

    def closed(self) -> dict[str, str] | None:
        """{"since": ..., "message": ..., "by": "close" | "end"} once the workshop is over, else None."""
        mark = self.mark()
        if mark:
            return {"since": mark["since"], "message": mark.get("message") or self.notice, "by": "close"}
        if self.end is not None and self.clock(self.end) >= self.end:
            return {"since": self.end.isoformat(), "message": self.notice, "by": "end"}
        return None

    def refusal(self, name: str) -> str | None:
        """What the login form tells `name` once the workshop is over (None: let them try)."""
        if name in self.staff:
            return None
        closed = self.closed()
        if closed is None:
            return None
        since = datetime.fromisoformat(closed["since"])
        return f"This workshop ended on {when(since)}, and its logins are closed. {closed['message']}"

    def close(self, message: str | None = None, at: datetime | None = None) -> dict[str, str]:
        mark = {"since": (at or datetime.now().astimezone()).isoformat(timespec="seconds")}
        if message:
            mark["message"] = message
        self.closed_file.parent.mkdir(parents=True, exist_ok=True)
        scratch = self.closed_file.with_suffix(".tmp")
        fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(mark, handle)
        os.replace(scratch, self.closed_file)
        return mark

    def reopen(self) -> bool:
        """Take the close mark back; False when there was none."""
        try:
            self.closed_file.unlink()
            return True
        except FileNotFoundError:
            return False


def refuse_after_the_end(closing: Closing) -> Callable[[Any, Any, dict[str, Any] | None], Any]:
    """A post_auth_hook for logins the workshop's own authenticators do not check (GitHub's)."""

    def hook(authenticator: Any, handler: Any, authentication: dict[str, Any] | None) -> Any:
        from tornado import web

        if authentication is not None:
            refusal = closing.refusal(authentication["name"])
            if refusal:
                raise web.HTTPError(403, "%s", refusal)
        return authentication

    return hook


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Close a workshop hub's logins, or open them again.")
    parser.add_argument("--file", type=Path, default=Path(contract.hub_data()) / contract.CLOSED_FILE)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("close").add_argument("--message", default=None)
    commands.add_parser("reopen")
    commands.add_parser("show")
    args = parser.parse_args(argv)
    closing = Closing(args.file)
    # One line each: `dlworkshop close` shows what this prints.
    if args.command == "close":
        mark = closing.close(args.message)
        print(f"closed since {mark['since']}: logins are refused, except admins' and helpers'")
    elif args.command == "reopen":
        print("reopened: logins are accepted again" if closing.reopen() else "the workshop was not closed")
    else:
        print(json.dumps(closing.mark()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
