"""Where code runs is where it lives: the import rules between the project's packages, read from the
source with `ast` (nothing is imported to check them). An import inside a function counts as much as
one at the top of a module: it runs all the same, only later."""

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


def _type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def _run_at_import(node: ast.AST) -> Iterator[ast.AST]:
    """The nodes that run when a module is imported: not function bodies, not TYPE_CHECKING blocks."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) or _type_checking(child):
            continue
        yield child
        yield from _run_at_import(child)


def _ever_run(node: ast.AST) -> Iterator[ast.AST]:
    """Every node that may run: function bodies included, TYPE_CHECKING blocks (never run) left out."""
    for child in ast.iter_child_nodes(node):
        if _type_checking(child):
            continue
        yield child
        yield from _ever_run(child)


def imports(path: Path, *, top_level_only: bool) -> Iterator[str]:
    """Absolute names of what a module imports (`from a import b` yields a.b and a); with
    top_level_only, only what runs when the module is imported, else also what its functions import."""
    tree = ast.parse(path.read_text(), filename=str(path))
    nodes = _run_at_import(tree) if top_level_only else _ever_run(tree)
    for node in nodes:
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def project_edges() -> dict[str, set[str]]:
    """Module -> the project modules it imports, at import time or inside its functions."""
    known = modules()
    edges: dict[str, set[str]] = {}
    for name, path in known.items():
        targets = {target for target in imports(path, top_level_only=False) if target in known}
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


# What hub/ (and jupyterhub_config.py) may import of dlworkshop: the shared core, and the engines'
# pure modules the backends need. docs/architecture.md lists the same.
HUB_MAY_IMPORT = (
    "dlworkshop.settings",
    "dlworkshop.contract",
    "dlworkshop.errors",
    "dlworkshop.capacity",
    "dlworkshop.gpus",
    "dlworkshop.accounts",
    "dlworkshop.hubclient",
    "dlworkshop.cgroup_cpu",
    "dlworkshop.engines",
    "dlworkshop.kubernetes.mapping",
    "dlworkshop.slurm.jobs",
    "dlworkshop.slurm.environment",
    "dlworkshop.slurm.apptainer",
)


def _allowed_for_the_hub(module: str) -> bool:
    return any(
        module == allowed or module.startswith(f"{allowed}.") or allowed.startswith(f"{module}.")
        for allowed in HUB_MAY_IMPORT
    )


def test_the_hub_imports_only_the_declared_core() -> None:
    known = modules()
    hub_files = {name: path for name, path in known.items() if name.split(".")[0] == "hub"}
    hub_files["jupyterhub_config"] = REPO / "jupyterhub_config.py"
    for path in hub_files.values():
        wrong = sorted(
            {
                target
                for target in imports(path, top_level_only=False)
                if target in known
                and target.split(".")[0] == "dlworkshop"
                and not _allowed_for_the_hub(target)
            }
        )
        assert not wrong, f"{path.relative_to(REPO)} imports {wrong}: hub/ may import only {HUB_MAY_IMPORT}"


def test_the_declared_core_is_the_documented_one() -> None:
    architecture = (REPO / "docs" / "architecture.md").read_text()
    missing = [name for name in HUB_MAY_IMPORT if f"`{name}`" not in architecture]
    assert not missing, f"docs/architecture.md does not list {missing} among what hub/ may import"


def test_the_core_the_hub_imports_reaches_nothing_beyond_it() -> None:
    """Nor does the core itself import the instructor's machine's code, even inside a function:
    what it reaches is the core and what the core itself names."""
    edges = project_edges()
    # The engines' tables dlworkshop.engines registers, the learner image's half of the contract,
    # and the host's busy CPU, which the hub's admission and a learner's kernel ahead read alike.
    registered = {"dlworkshop.kubernetes.supported", "dlworkshop.slurm.supported"}
    registered |= {"dlworkshop_learner", "dlworkshop_learner.layout", "dlworkshop_learner.host_cpu"}
    pending = [name for name in edges if name.split(".")[0] == "dlworkshop" and _allowed_for_the_hub(name)]
    reached: set[str] = set()
    while pending:
        name = pending.pop()
        if name not in reached:
            reached.add(name)
            pending.extend(edges[name])
    beyond = sorted(n for n in reached if not (_allowed_for_the_hub(n) or n in registered))
    assert not beyond, f"the hub's core reaches {beyond}"


# Where code runs: a folder that runs somewhere imports nothing of a place it does not run in.
NEVER = {
    # The deploy reaches a remote host; it never drives this machine's hub.
    "dlworkshop.deploy": ("dlworkshop.local", "dlworkshop.clients", "hub"),
    # Any Docker host's parts serve `up` and the deploy alike.
    "dlworkshop.docker_host": (
        "dlworkshop.local",
        "dlworkshop.deploy",
        "dlworkshop.clients",
        "dlworkshop.cli",
    ),
    # The engines' modules describe a cluster, wherever they are read.
    "dlworkshop.kubernetes": (
        "dlworkshop.local",
        "dlworkshop.deploy",
        "dlworkshop.clients",
        "dlworkshop.cli",
    ),
    "dlworkshop.slurm": ("dlworkshop.local", "dlworkshop.deploy", "dlworkshop.clients", "dlworkshop.cli"),
    # The settings import no engine and no place.
    "dlworkshop.settings": (
        "dlworkshop.local",
        "dlworkshop.deploy",
        "dlworkshop.clients",
        "dlworkshop.cli",
        "dlworkshop.docker_host",
        "dlworkshop.kubernetes",
        "dlworkshop.slurm",
        "dlworkshop.engines",
    ),
}


@pytest.mark.parametrize("folder", sorted(NEVER))
def test_a_folder_imports_nothing_of_a_place_it_does_not_run_in(folder: str) -> None:
    for name, path in modules().items():
        if name != folder and not name.startswith(f"{folder}."):
            continue
        wrong = [t for t in imports(path, top_level_only=False) if t.startswith(NEVER[folder])]
        assert not wrong, f"{path.relative_to(REPO)} imports {sorted(set(wrong))}"


@pytest.mark.parametrize("entry", ["hub/__init__.py", "dlworkshop/cli/__init__.py"])
def test_the_places_that_load_settings_register_every_engine_first(entry: str) -> None:
    """The hub package (whatever of it runs: jupyterhub_config.py, `python -m hub.prewarm`, the
    chart's extraConfig) and the CLI import dlworkshop.engines before any settings load, so no
    engine's refusals are skipped (an unregistered engine fails loudly: tests/config/test_settings.py)."""
    assert "dlworkshop.engines" in set(imports(REPO / entry, top_level_only=True))
