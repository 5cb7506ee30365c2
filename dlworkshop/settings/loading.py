"""Reading workshop.yaml: which file (config discovery), the embedded default, and every problem
reported at its line."""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from dlworkshop import contract
from dlworkshop.errors import ConfigError
from dlworkshop.settings.model import Settings

DEFAULT_CONFIG_NAME = contract.CONFIG_NAME
CONFIG_ENV = contract.CONFIG_ENV


# The embedded default behind `dlworkshop up` with no file: CPU image, shared-code login, 4 learners.
DEFAULT_SETTINGS_YAML = """\
workshop:
  name: Introduction to deep learning
learners:
  count: 4
auth:
  mode: shared-code
  access_code: {access_code}
resources:
  cpu: 0.5
  memory: 2G
"""


def _line_numbers(text: str) -> dict[tuple[str | int, ...], int]:
    """Map each key path in the YAML text to its 1-based line, to point problems at the file."""
    lines: dict[tuple[str | int, ...], int] = {}

    def walk(node: yaml.Node, path: tuple[str | int, ...]) -> None:
        lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                child = (*path, key.value)
                lines[child] = key.start_mark.line + 1
                walk(value, child)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                walk(item, (*path, index))

    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        return lines
    if root is not None:
        walk(root, ())
    return lines


def _describe(error: ErrorDetails, lines: dict[tuple[str | int, ...], int], source: str) -> str:
    loc = tuple(part for part in error["loc"] if not str(part).startswith("function-"))
    path = ".".join(str(part) for part in loc)
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key (check its spelling and indentation)"
    elif error["type"] == "missing":
        message = "required, but missing"
    line = next((lines[loc[:n]] for n in range(len(loc), -1, -1) if loc[:n] in lines), None)
    where = f"{source}:{line}: " if line else f"{source}: "
    return f"{where}{path}: {message}" if path else f"{where}{message}"


def parse_settings(text: str, source: str = DEFAULT_CONFIG_NAME, base_dir: Path | None = None) -> Settings:
    """Validate YAML text; raise ConfigError listing every problem with its path and line. Relative
    paths in it are taken relative to base_dir (the file's folder), when given."""
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source} is not valid YAML: {exc}", fix="fix the YAML syntax") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source} must be a mapping of sections (workshop, learners, auth...)")
    try:
        return Settings.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as exc:
        lines = _line_numbers(text)
        problems = [_describe(error, lines, source) for error in exc.errors()]
        raise ConfigError(
            f"{source} has {len(problems)} problem(s)",
            problems=problems,
            fix="correct the keys named above; `dlworkshop init` writes a commented example",
        ) from None


def find_config(path: Path | None = None) -> Path | None:
    """The file to read: an explicit path, then $DLWORKSHOP_CONFIG, then ./workshop.yaml."""
    if path is not None:
        if not path.is_file():
            raise ConfigError(f"{path} does not exist", fix="run `dlworkshop init` to write one")
        return path
    from_env = os.environ.get(CONFIG_ENV)
    if from_env:
        return find_config(Path(from_env))
    local = Path(DEFAULT_CONFIG_NAME)
    return local if local.is_file() else None


def load_settings(path: Path | None = None, *, default_access_code: str | None = None) -> Settings:
    """Load and validate workshop.yaml; with no file anywhere, the embedded default."""
    found = find_config(path)
    if found is None:
        code = default_access_code or os.environ.get("DLWORKSHOP_ACCESS_CODE") or "deep-learning"
        return parse_settings(DEFAULT_SETTINGS_YAML.format(access_code=code), source="<embedded default>")
    return parse_settings(
        found.read_text(encoding="utf-8"), source=str(found), base_dir=found.resolve().parent
    )
