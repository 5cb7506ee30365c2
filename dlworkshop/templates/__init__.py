"""Files the package writes for users (example config, printable pages)."""

from __future__ import annotations

from importlib.resources import files


def read_template(name: str) -> str:
    return files(__name__).joinpath(name).read_text(encoding="utf-8")


def example_config() -> str:
    return read_template("workshop.example.yaml")
