"""What every section of workshop.yaml shares: unknown keys refused, paths taken from the file's
folder, absolute container paths, and a count that may be `auto`."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationInfo


def _relative_to_the_file(path: Path, info: ValidationInfo) -> Path:
    """A relative path in workshop.yaml means relative to that file, wherever the command runs."""
    base = (info.context or {}).get("base_dir")
    return path if path.is_absolute() or base is None else Path(base) / path


# A file named in workshop.yaml: `up`, `deploy` and `check` all read it from the same place.
ConfigPath = Annotated[Path, AfterValidator(_relative_to_the_file)]


class StrictModel(BaseModel):
    """Unknown keys are errors: a typo in workshop.yaml must not be silently ignored."""

    model_config = ConfigDict(extra="forbid", validate_default=True, frozen=True)


def _absolute_container_path(value: str) -> str:
    path = PurePosixPath(value)
    if not path.is_absolute() or ".." in path.parts:
        raise ValueError(f"{value} is not an absolute path (write it like /srv/datasets)")
    return str(path)


AbsolutePath = Annotated[str, AfterValidator(_absolute_container_path)]


def count_or_auto(value: Any) -> Any:
    """One clear message, instead of one per member of `int | "auto"`."""
    if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
        return value
    raise ValueError(f"{value!r} is neither a count (0 or more) nor auto")
