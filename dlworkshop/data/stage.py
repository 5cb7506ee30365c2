"""Link verified copies into every cache the upstream lesson's own calls look in.

Links, not copies: the data stays read-only under the data root (never in a learner's volume), and
staging takes milliseconds at every server start. A learner's own file at a target is never touched.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from dlworkshop.data.registry import CacheName, Registry


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


def stage(registry: Registry, data_root: Path, roots: CacheRoots) -> list[StageResult]:
    results = []
    for dataset, item in registry.files():
        source = data_root / dataset / item.name
        for target_spec in item.stage:
            root = roots.root(target_spec.cache)
            if root is None:
                continue
            target = root / target_spec.path
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
