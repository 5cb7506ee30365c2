"""Link verified copies into every cache the upstream lesson's own calls look in.

Links, not copies: the data stays read-only under the data root (never in a learner's volume), and
staging takes milliseconds at every server start. A learner's own file at a target is never touched.

The image writes the links to make as a plan (plain JSON) when it is built, so a server's start
links them without reading and validating the registry (pydantic, YAML) each time.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dlworkshop.data.registry import CacheName, Registry

PLAN_FILE = "stage-plan.json"


@dataclass(frozen=True)
class CacheRoots:
    seaborn: Path
    keras: Path
    work: Path | None

    @classmethod
    def from_environment(cls, work: Path | None = None) -> CacheRoots:
        """The roots seaborn and Keras themselves use: $SEABORN_DATA (else seaborn's user cache
        folder, ~/.cache/seaborn on Linux) and $KERAS_HOME (else ~/.keras)."""
        home = Path.home()
        work_env = os.environ.get("DLWORKSHOP_WORK")
        user_cache = Path(os.environ.get("XDG_CACHE_HOME", home / ".cache"))
        return cls(
            seaborn=Path(os.environ.get("SEABORN_DATA", user_cache / "seaborn")),
            keras=Path(os.environ.get("KERAS_HOME", home / ".keras")),
            work=work or (Path(work_env) if work_env else None),
        )

    def root(self, cache: CacheName) -> Path | None:
        return getattr(self, cache)


@dataclass(frozen=True)
class StageResult:
    target: Path
    source: Path
    action: str  # linked | kept (already linked) | skipped (a learner's own file) | missing


@dataclass(frozen=True)
class PlannedLink:
    source: str  # the verified copy
    cache: str  # which cache root the link goes in
    path: str  # where, relative to that root


def plan(registry: Registry, data_root: Path) -> list[PlannedLink]:
    return [
        PlannedLink(str(data_root / dataset / item.name), target.cache, target.path)
        for dataset, item in registry.files()
        for target in item.stage
    ]


def write_plan(registry: Registry, data_root: Path) -> Path:
    target = data_root / PLAN_FILE
    target.write_text(json.dumps([asdict(link) for link in plan(registry, data_root)], indent=1))
    return target


def read_plan(data_root: Path) -> list[PlannedLink] | None:
    source = data_root / PLAN_FILE
    if not source.is_file():
        return None
    return [PlannedLink(**link) for link in json.loads(source.read_text())]


def link(planned: list[PlannedLink], roots: CacheRoots) -> list[StageResult]:
    results = []
    for planned_link in planned:
        root = roots.root(planned_link.cache)  # type: ignore[arg-type]
        if root is None:
            continue
        source, target = Path(planned_link.source), root / planned_link.path
        if not source.is_file():
            results.append(StageResult(target, source, "missing"))
            continue
        if target.is_symlink() and Path(os.readlink(target)) == source:
            results.append(StageResult(target, source, "kept"))
            continue
        if target.exists() or target.is_symlink():
            results.append(StageResult(target, source, "skipped"))
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(source)
        results.append(StageResult(target, source, "linked"))
    return results


def stage(registry: Registry, data_root: Path, roots: CacheRoots) -> list[StageResult]:
    return link(plan(registry, data_root), roots)
