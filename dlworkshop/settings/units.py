"""The units workshop.yaml is written in: sizes (`2G`, `512M`) and fractions of a GPU (`1/3`)."""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Annotated, Any

from pydantic import BeforeValidator

_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_bytes(value: Any) -> int:
    """Parse a Docker-style size (`512M`, `2G`, `1.5g`, or a plain number of bytes)."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as 2G or 512M")
    if isinstance(value, int):
        return value
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*", str(value), flags=re.IGNORECASE)
    if not match:
        raise ValueError(f"{value!r} is not a size; write it like 2G or 512M")
    number, unit = match.groups()
    return int(float(number) * _SIZE_UNITS[unit.lower()])


def format_bytes(size: int) -> str:
    """The inverse of parse_bytes, as Docker and JupyterHub accept it (`2G`, `512M`)."""
    for unit in ("T", "G", "M", "K"):
        factor = _SIZE_UNITS[unit.lower()]
        if size >= factor and size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)


ByteSize = Annotated[int, BeforeValidator(parse_bytes)]


def parse_share(value: Any) -> Any:
    """Accept `1/3` as well as 0.333 for a GPU share."""
    if isinstance(value, str) and "/" in value:
        numerator, _, denominator = value.partition("/")
        try:
            return float(Fraction(int(numerator), int(denominator)))
        except (ValueError, ZeroDivisionError):
            raise ValueError(f"{value!r} is not a fraction like 1/2") from None
    return value
