"""dlworkshop's pip extras, seen from the commands that need them: a command whose extra is not
installed ends with one line naming the extra, instead of an ImportError deep inside it.

pyproject.toml lists each extra's packages; here are only the modules whose absence shows that an
extra is missing (tests/package/test_extras.py keeps the two in step).
"""

from __future__ import annotations

import importlib.util

from dlworkshop.errors import WorkshopError

EXTRA_MODULES: dict[str, tuple[str, ...]] = {
    "deploy": ("ansible_collections", "ansible_runner", "testinfra"),
    "report": ("matplotlib", "websockets", "papermill", "nbformat"),
}


class MissingExtraError(WorkshopError):
    """A command needs packages of an extra that is not installed."""


def missing_modules(extra: str) -> list[str]:
    return [module for module in EXTRA_MODULES[extra] if importlib.util.find_spec(module) is None]


def require_extra(extra: str, command: str) -> None:
    """Stop `dlworkshop <command>` with the extra to install when any of its modules is missing."""
    if missing_modules(extra):
        raise MissingExtraError(
            f"dlworkshop {command} needs the [{extra}] extra", fix=f"pip install 'dlworkshop[{extra}]'"
        )
