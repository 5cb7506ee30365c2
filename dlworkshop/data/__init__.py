"""Datasets of the lesson: where their verified copies live, and how notebooks find them.

Import-light on purpose (notebooks and every learner kernel import it): the registry model, the
fetcher and the stager live in submodules that are imported only when used.
"""

from __future__ import annotations

from pathlib import Path

from dlworkshop.contract import learner

__all__ = ["data_root", "locate"]
data_root = learner.data_root


def locate(name: str, filename: str | None = None) -> Path:
    """Path of a dataset's verified copy (its folder, or one of its files). Raises a clear error when
    the data has not been fetched, instead of letting a notebook reach for the network."""
    path = data_root() / name
    if filename is not None:
        path = path / filename
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: the workshop data is not staged here. "
            f"Run `dlworkshop data fetch --dest {data_root()}` or set {learner.DATA_ENV}."
        )
    return path
