"""Datasets of the lesson: where their verified copies live, and how notebooks find them.

Import-light on purpose (notebooks and every learner kernel import it): the registry model, the
fetcher and the stager live in submodules that are imported only when used.
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "DLWORKSHOP_DATA"
DEFAULT_DATA_ROOT = Path("/opt/dlworkshop/data")


def data_root() -> Path:
    """The folder holding verified copies, laid out <dataset>/<file>."""
    return Path(os.environ.get(DATA_ENV, DEFAULT_DATA_ROOT))


def locate(name: str, filename: str | None = None) -> Path:
    """Path of a dataset's verified copy (its folder, or one of its files). Raises a clear error when
    the data has not been fetched, instead of letting a notebook reach for the network."""
    path = data_root() / name
    if filename is not None:
        path = path / filename
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: the workshop data is not staged here. "
            f"Run `dlworkshop data fetch --dest {data_root()}` or set {DATA_ENV}."
        )
    return path
