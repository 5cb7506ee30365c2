"""Where code runs is where it lives: the import rules between the project's packages, read from the
source with `ast` (nothing is imported to check them)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("dlworkshop", "dlworkshop_learner", "hub")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            found[module_name(path)] = path
    return found


def _run_at_import(node: ast.AST) -> Iterator[ast.AST]:
    """The nodes that run when a module is imported: not function bodies, not TYPE_CHECKING blocks."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        if (
            isinstance(child, ast.If)
            and isinstance(child.test, ast.Name)
            and child.test.id == "TYPE_CHECKING"
        ):
            continue
        yield child
        yield from _run_at_import(child)


def imports(path: Path, *, top_level_only: bool) -> Iterator[str]:
    """Absolute names of what a module imports (`from a import b` yields a.b and a); with
    top_level_only, only what runs when the module is imported."""
    tree = ast.parse(path.read_text(), filename=str(path))
    nodes = _run_at_import(tree) if top_level_only else ast.walk(tree)
    for node in nodes:
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def project_edges() -> dict[str, set[str]]:
    """Module -> the project modules it imports when it is imported (module level)."""
    known = modules()
    edges: dict[str, set[str]] = {}
    for name, path in known.items():
        targets = {target for target in imports(path, top_level_only=True) if target in known}
        # Importing a.b.c runs a and a.b first.
        targets |= {".".join(t.split(".")[:n]) for t in set(targets) for n in range(1, t.count(".") + 1)}
        edges[name] = {t for t in targets if t in known and t != name and not name.startswith(f"{t}.")}
    return edges


def test_no_import_circle() -> None:
    edges = project_edges()
    visiting: list[str] = []
    done: set[str] = set()

    def visit(node: str) -> None:
        if node in done:
            return
        if node in visiting:
            circle = [*visiting[visiting.index(node) :], node]
            pytest.fail("import circle: " + " -> ".join(circle))
        visiting.append(node)
        for target in sorted(edges[node]):
            visit(target)
        visiting.pop()
        done.add(node)

    for node in sorted(edges):
        visit(node)


@pytest.mark.parametrize("engine", ["dockerspawner", "docker", "batchspawner", "kubespawner"])
def test_only_a_backend_module_imports_its_engine(engine: str) -> None:
    """The rest of hub/ knows no engine: admission, pre-warm, logins work through the seam."""
    for name, path in modules().items():
        if not name.startswith("hub.") or name.startswith("hub.backends."):
            continue
        wrong = [target for target in imports(path, top_level_only=False) if target.split(".")[0] == engine]
        assert not wrong, f"{path.relative_to(REPO)} imports {engine}; engine code lives in hub/backends/"


def test_dockerspawner_is_imported_by_the_docker_backend_alone() -> None:
    importers = {
        name
        for name, path in modules().items()
        if any(t.split(".")[0] == "dockerspawner" for t in imports(path, top_level_only=False))
    }
    assert importers == {"hub.backends.docker"}


def test_the_host_package_does_not_import_the_hub_package() -> None:
    """dlworkshop runs on the instructor's machine and in the hub; hub/ only in the hub."""
    for name, path in modules().items():
        if name.split(".")[0] != "dlworkshop":
            continue
        wrong = [t for t in imports(path, top_level_only=False) if t.split(".")[0] == "hub"]
        assert not wrong, f"{path.relative_to(REPO)} imports {wrong}"


def test_the_settings_import_no_engine() -> None:
    """Engines register what they refuse (dlworkshop/settings/support.py); the settings model asks
    through one function and imports none of them, not even inside a function."""
    engines = ("dlworkshop.kubernetes", "dlworkshop.slurm", "dlworkshop.deploy", "dlworkshop.engines", "hub")
    for name, path in modules().items():
        if name != "dlworkshop.settings" and not name.startswith("dlworkshop.settings."):
            continue
        wrong = [t for t in imports(path, top_level_only=False) if t.startswith(engines)]
        assert not wrong, f"{path.relative_to(REPO)} imports {wrong}"
