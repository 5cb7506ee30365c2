"""The dataset registry (lessons/datasets.yaml) as a validated model."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from dlworkshop.contract import learner
from dlworkshop.errors import DataError

CacheName = Literal["seaborn", "keras", "work"]


class StageTarget(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    cache: CacheName
    path: str = Field(description="Relative to the cache's root.")


class DataFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    urls: list[str] = Field(min_length=1)
    size: int | None = None
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    md5: str | None = Field(default=None, pattern=r"^[0-9a-f]{32}$")
    stage: list[StageTarget] = []

    @property
    def known_hash(self) -> str | None:
        """The hash to verify against, in pooch's `alg:hex` form; sha256 preferred."""
        if self.sha256:
            return f"sha256:{self.sha256}"
        if self.md5:
            return f"md5:{self.md5}"
        return None


class Dataset(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str
    licence: str
    homepage: str
    episodes: list[int] = []
    unpack: Literal["keras"] | None = None
    files: list[DataFile] = Field(min_length=1)


class Registry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1]
    datasets: dict[str, Dataset]

    @model_validator(mode="after")
    def _unique_file_names(self) -> Registry:
        for name, dataset in self.datasets.items():
            names = [item.name for item in dataset.files]
            if len(names) != len(set(names)):
                raise ValueError(f"dataset {name} lists a file twice")
        return self

    def select(self, only: list[str] | None) -> dict[str, Dataset]:
        if not only:
            return dict(self.datasets)
        unknown = sorted(set(only) - set(self.datasets))
        if unknown:
            raise DataError(
                f"unknown dataset(s): {', '.join(unknown)}",
                fix=f"choose from {', '.join(self.datasets)}",
            )
        return {name: self.datasets[name] for name in only}

    def files(self) -> list[tuple[str, DataFile]]:
        return [(name, item) for name, dataset in self.datasets.items() for item in dataset.files]


def default_registry_path() -> Path:
    """datasets.yaml beside the lessons: $DLWORKSHOP_LESSONS, this checkout, or the image's copy."""
    from dlworkshop.lessons import lessons_dir

    return lessons_dir() / "datasets.yaml"


def registry_path(path: Path | None = None) -> Path:
    if path is not None:
        return path
    from_env = os.environ.get(learner.REGISTRY_ENV)
    return Path(from_env) if from_env else default_registry_path()


def load_registry(path: Path | None = None) -> Registry:
    source = registry_path(path)
    try:
        data = yaml.safe_load(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DataError(f"cannot read the dataset registry {source}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise DataError(f"{source} is not valid YAML: {exc}") from None
    try:
        return Registry.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise DataError(f"{source} is not a valid registry: {problems}") from None
