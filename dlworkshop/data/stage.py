"""The links that put the verified copies where the upstream lesson's own calls look, decided from the
registry on this side: written as a plan when the image is built (`dlworkshop data plan`), or made at
once (`dlworkshop data stage`, binder's start). Making them is the learner package's job
(`dlworkshop_learner.data_links`), which reads the plan at every server start without the registry.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from dlworkshop_learner.data_links import CacheRoots, PlannedLink, StageResult, link, save_plan

if TYPE_CHECKING:
    from dlworkshop.data.registry import Registry


def plan(registry: Registry, data_root: Path) -> list[PlannedLink]:
    return [
        PlannedLink(str(data_root / dataset / item.name), target.cache, target.path)
        for dataset, item in registry.files()
        for target in item.stage
    ]


def write_plan(registry: Registry, data_root: Path) -> Path:
    return save_plan(plan(registry, data_root), data_root)


def stage(registry: Registry, data_root: Path, roots: CacheRoots) -> list[StageResult]:
    return link(plan(registry, data_root), roots)
