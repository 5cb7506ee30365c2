"""Errors a user can cause. The CLI catches them once and prints one line with the fix."""

from __future__ import annotations


class WorkshopError(Exception):
    """A problem the user can fix; `fix` says how."""

    exit_code = 2

    def __init__(self, message: str, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        return self.message if not self.fix else f"{self.message} (fix: {self.fix})"


class ConfigError(WorkshopError):
    """workshop.yaml is missing, unreadable or invalid. `problems` lists every one found."""

    def __init__(self, message: str, problems: list[str] | None = None, fix: str | None = None) -> None:
        super().__init__(message, fix)
        self.problems = problems or []


class DockerUnavailableError(WorkshopError):
    """The Docker engine cannot be reached."""


class DataError(WorkshopError):
    """A dataset could not be fetched, or a file does not match its recorded hash."""


class CheckFailed(WorkshopError):
    """A verification (data verify, smoke test, deploy verify) found problems; already reported."""

    exit_code = 1
