"""Link the verified data copies into every cache the upstream lesson's own calls look in.

Links, not copies: the data stays read-only under the data root (never in a learner's volume), and
linking takes milliseconds at every server start. A learner's own file at a target is never touched.

Which links to make is decided when the image is built, from the dataset registry, and written as a
plan (plain JSON) beside the data: a server's start reads the plan, never the registry.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from dlworkshop_learner import layout


@dataclass(frozen=True)
class PlannedLink:
    source: str  # the verified copy
    cache: str  # which cache root the link goes in: seaborn, keras or work
    path: str  # where, relative to that root


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
        work_env = os.environ.get(layout.WORK_ENV)
        user_cache = Path(os.environ.get("XDG_CACHE_HOME", home / ".cache"))
        return cls(
            seaborn=Path(os.environ.get("SEABORN_DATA", user_cache / "seaborn")),
            keras=Path(os.environ.get("KERAS_HOME", home / ".keras")),
            work=work or (Path(work_env) if work_env else None),
        )

    def root(self, cache: str) -> Path | None:
        return getattr(self, cache)


@dataclass(frozen=True)
class StageResult:
    target: Path
    source: Path
    action: str  # linked | kept (already linked) | skipped (a learner's own file) | missing


def save_plan(planned: list[PlannedLink], root: Path) -> Path:
    target = root / layout.STAGE_PLAN_FILE
    target.write_text(json.dumps([asdict(item) for item in planned], indent=1))
    return target


def read_plan(root: Path) -> list[PlannedLink]:
    """The plan the image build wrote; FileNotFoundError names the file when there is none."""
    return [PlannedLink(**item) for item in json.loads((root / layout.STAGE_PLAN_FILE).read_text())]


def link(planned: list[PlannedLink], roots: CacheRoots) -> list[StageResult]:
    results = []
    for planned_link in planned:
        root = roots.root(planned_link.cache)
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
