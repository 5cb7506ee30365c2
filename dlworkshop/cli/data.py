"""`dlworkshop data ...`: fetch, verify, lock and stage the lesson's datasets."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from dlworkshop.cli import command_group
from dlworkshop.data import data_root
from dlworkshop.errors import CheckFailed

data_app = command_group("data", "The lesson's datasets: fetch once, verify by hash, stage offline.")
console = Console(soft_wrap=True)

RegistryOption = typer.Option(
    None, "--registry", help="datasets.yaml to use (default: lessons/datasets.yaml)."
)
DestOption = typer.Option(
    None, "--dest", help="Data root, laid out <dataset>/<file> (default: $DLWORKSHOP_DATA)."
)
OnlyOption = typer.Option(None, "--only", help="Only these datasets (repeat the option).")


@data_app.command("fetch")
def fetch_command(
    dest: Path | None = DestOption,
    mirror: str | None = typer.Option(None, "--mirror", help="A folder or URL laid out <dataset>/<file>."),
    only: list[str] | None = OnlyOption,
    registry: Path | None = RegistryOption,
    ca_bundle: str = typer.Option(
        "auto",
        "--ca-bundle",
        help="CAs HTTPS sources are verified against: auto (this host's bundle), off, or a PEM file.",
    ),
) -> None:
    """Download every dataset once (from a mirror when given) and verify it by hash."""
    from dlworkshop.data.fetch import fetch
    from dlworkshop.data.registry import load_registry
    from dlworkshop.image.ca_bundle import parse_ca_bundle_option, resolve_ca_bundle

    target = dest or data_root()
    trusted = resolve_ca_bundle(parse_ca_bundle_option(ca_bundle))
    paths = fetch(load_registry(registry), target, mirror=mirror, only=only, ca_bundle=trusted)
    console.print(f"[green]ok[/]: {len(paths)} files verified in {target}")


@data_app.command("verify")
def verify_command(
    dest: Path | None = DestOption,
    only: list[str] | None = OnlyOption,
    registry: Path | None = RegistryOption,
) -> None:
    """Check every file against its recorded hash; one line per missing or bad file."""
    from dlworkshop.data.fetch import verify
    from dlworkshop.data.registry import load_registry

    target = dest or data_root()
    checks = verify(load_registry(registry), target, only=only)
    bad = [check for check in checks if not check.ok]
    for check in bad:
        console.print(f"[red]bad[/]: {check.dataset}/{check.name}: {check.problem}", highlight=False)
    if bad:
        raise CheckFailed(
            f"{len(bad)} of {len(checks)} files missing or bad in {target}",
            fix=f"run `dlworkshop data fetch --dest {target}`",
        )
    console.print(f"[green]ok[/]: {len(checks)} files verified in {target}")


@data_app.command("lock")
def lock_command(
    registry: Path | None = RegistryOption,
    mirror: str | None = typer.Option(None, "--mirror", help="Fetch from this mirror instead."),
) -> None:
    """Record sha256 and size of files the registry has no hash for yet, from a real download."""
    from dlworkshop.data.lock import lock, unlocked_files
    from dlworkshop.data.registry import load_registry, registry_path

    loaded = load_registry(registry)
    if not unlocked_files(loaded):
        console.print("every file already has a sha256")
        return
    recorded = lock(loaded, registry_path(registry), mirror=mirror)
    table = Table("file", "sha256", "size")
    for name, digest, size in recorded:
        table.add_row(name, digest, str(size))
    console.print(table)


@data_app.command("stage")
def stage_command(
    dest: Path | None = DestOption,
    work: Path | None = typer.Option(
        None, "--work", help="The learner's work folder (default: $DLWORKSHOP_WORK)."
    ),
    registry: Path | None = RegistryOption,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only problems."),
) -> None:
    """Link the verified copies into seaborn's and Keras' caches and the work folder."""
    from dlworkshop.data.registry import load_registry
    from dlworkshop.data.stage import stage
    from dlworkshop_learner.data_links import CacheRoots

    results = stage(load_registry(registry), dest or data_root(), CacheRoots.from_environment(work))
    for result in results:
        if result.action == "missing" or not quiet:
            console.print(f"{result.action:8} {result.target}", highlight=False)


@data_app.command("plan")
def plan_command(dest: Path | None = DestOption, registry: Path | None = RegistryOption) -> None:
    """Write the links `stage` makes as a plan beside the data, so a server's start needs no registry."""
    from dlworkshop.data.registry import load_registry
    from dlworkshop.data.stage import write_plan

    console.print(f"wrote {write_plan(load_registry(registry), dest or data_root())}")
