"""Workshop logins mapped onto the cluster's Unix accounts (dlw-01..N), for the Slurm backend.

A learner's job runs under a real account with a UID every node knows and a private home, which
workshop logins (a chosen name, a generated account, a GitHub name, a pre-warmed seat) are not.
The first start of a login takes the next free account; the login keeps it for the workshop, so
their files are there at every start. The book is a JSON file on the hub's data folder, written
whole then renamed (never half-written), so it survives a hub restart, like the seat book.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import ClassVar


class AccountsExhausted(Exception):
    """Every cluster account already belongs to another login."""


class ClusterAccountBook:
    # One book per file in the hub process, shared by every learner's spawner.
    _books: ClassVar[dict[Path, ClusterAccountBook]] = {}

    def __init__(self, path: Path, accounts: list[str]) -> None:
        self.path = path
        self.accounts = list(accounts)
        self.by_login: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}

    @classmethod
    def at(cls, path: Path, accounts: list[str]) -> ClusterAccountBook:
        book = cls._books.get(path)
        if book is None or book.accounts != list(accounts):
            book = cls._books[path] = cls(path, accounts)
        return book

    def account_for(self, login: str) -> str:
        """The login's account: theirs from before, else the first free one."""
        if login in self.by_login:
            return self.by_login[login]
        taken = set(self.by_login.values())
        for account in self.accounts:
            if account not in taken:
                self.by_login[login] = account
                self._save()
                return account
        raise AccountsExhausted(
            f"all {len(self.accounts)} cluster accounts belong to other learners "
            "(slurm.accounts.count in workshop.yaml)"
        )

    def login_of(self, account: str) -> str | None:
        return next((login for login, owned in self.by_login.items() if owned == account), None)

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        scratch = self.path.with_suffix(".tmp")
        scratch.write_text(json.dumps(self.by_login, indent=1, sort_keys=True))
        os.replace(scratch, self.path)
