"""The learner package runs inside the learner image on the image's lock alone: it imports the
standard library, packages the lock installs, and itself; never the host package `dlworkshop`."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import dlworkshop_learner
from tests.conftest import REPO

PACKAGE = Path(dlworkshop_learner.__file__).parent
# Import names that differ from their distribution's name in the lock.
IMPORT_NAMES = {"pyyaml": "yaml", "scikit-learn": "sklearn", "tensorflow-cpu": "tensorflow"}


def locked_modules(lock: Path) -> set[str]:
    """Top-level import names of the distributions a lock pins."""
    names = re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", lock.read_text(), flags=re.MULTILINE)
    return {
        IMPORT_NAMES.get(name.lower(), name.lower().replace("-", "_").replace(".", "_")) for name in names
    }


def imported_modules(source: Path) -> set[str]:
    """Every module a file imports, at any depth (function-level and TYPE_CHECKING imports too)."""
    found = set()
    for node in ast.walk(ast.parse(source.read_text(), filename=str(source))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{source.name}: relative import; import dlworkshop_learner.<module>"
            found.add(node.module or "")
    return found


def test_the_learner_package_imports_only_the_stdlib_the_lock_and_itself() -> None:
    modules = sorted(PACKAGE.rglob("*.py"))
    assert {m.stem for m in modules} >= {"layout", "start", "process_hooks", "kernels", "offline_urls"}
    allowed = set(sys.stdlib_module_names) | {"dlworkshop_learner"}
    for variant in ("cpu", "cuda"):
        allowed_here = allowed | locked_modules(REPO / "image" / f"requirements-{variant}.lock")
        for module in modules:
            for name in imported_modules(module):
                top = name.split(".")[0]
                assert top != "dlworkshop", f"{module.name} imports the host package: {name}"
                assert top in allowed_here, f"{module.name} imports {name}, not in the {variant} lock"


def test_the_lock_knows_what_the_kernel_manager_imports() -> None:
    """The check above is only as good as its reading of the lock."""
    locked = locked_modules(REPO / "image" / "requirements-cpu.lock")
    assert {"jupyter_server", "tornado", "traitlets", "tensorflow"} <= locked
    assert "dlworkshop" not in locked
