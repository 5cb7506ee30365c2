"""The pip extras: every command module imports without them, a command whose extra is missing
names the extra in one line, and the modules the commands probe for belong to the extra that
pyproject.toml lists."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from dlworkshop.cli.extras import EXTRA_MODULES

REPO = Path(__file__).resolve().parents[2]
# Top-level modules of every extra (and what they pull in), hidden as if not installed.
OPTIONAL = sorted(
    {
        *(module for modules in EXTRA_MODULES.values() for module in modules),
        "ansible",
        "jupyterhub",
        "dockerspawner",
        "oauthenticator",
        "nbclient",
        "ipykernel",
        "pytest",
    }
)


def without_extras(*args: str) -> subprocess.CompletedProcess[str]:
    """`dlworkshop ARGS` in a Python where no extra's module can be imported."""
    code = (
        "import sys\n"
        f"for name in {OPTIONAL!r}: sys.modules[name] = None  # import fails, find_spec says missing\n"
        f"sys.argv = ['dlworkshop', *{list(args)!r}]\n"
        "from dlworkshop.cli import main\n"
        "main()\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)


def test_help_lists_every_command_without_any_extra() -> None:
    # --help imports every command module (dlworkshop.cli.COMMAND_MODULES): none may need an extra.
    result = without_extras("--help")
    assert result.returncode == 0, result.stderr
    for command in ("check", "init", "data", "up", "deploy", "verify", "smoke-test", "loadtest"):
        assert command in result.stdout
    for command in ("deploy", "verify", "smoke-test", "loadtest"):
        shown = without_extras(command, "--help")
        assert shown.returncode == 0 and "Usage" in shown.stdout, shown.stderr


@pytest.mark.parametrize(
    ("args", "extra"),
    [
        (["deploy", "-i", "inventory.ini"], "deploy"),
        (["verify", "-i", "inventory.ini"], "deploy"),
        (["smoke-test", "--hub", "http://127.0.0.1:9"], "report"),
        (["loadtest", "--hub", "http://127.0.0.1:9"], "report"),
    ],
)
def test_a_command_without_its_extra_names_the_extra(args: list[str], extra: str) -> None:
    result = without_extras(*args)
    assert result.returncode == 2
    assert f"error: dlworkshop {args[0]} needs the [{extra}] extra" in result.stderr
    assert f"fix: pip install 'dlworkshop[{extra}]'" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_probed_modules_come_from_the_extras_pyproject_lists() -> None:
    tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    providers = packages_distributions()
    for extra, modules in EXTRA_MODULES.items():
        listed = {_name(requirement) for requirement in extras[extra]}
        for module in modules:
            assert module in providers, f"{module} (probed for [{extra}]) is not installed here"
            assert {_name(dist) for dist in providers[module]} & listed, (
                f"{module} comes from {providers[module]}, which [{extra}] does not list: {sorted(listed)}"
            )


def _name(requirement: str) -> str:
    """A requirement's project name, normalised (PEP 503)."""
    return re.sub(r"[-_.]+", "-", re.split(r"[\s<>=!~\[;@]", requirement, maxsplit=1)[0]).lower()
