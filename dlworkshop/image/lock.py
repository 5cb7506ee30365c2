"""`dlworkshop image lock`: resolve requirements-<variant>.in into hash-locked files with uv."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from dlworkshop.errors import WorkshopError
from dlworkshop.image.build import REPO, Variant

# The image's Python and platform, whatever machine runs the lock.
PYTHON_VERSION = "3.11"
PLATFORM = "x86_64-manylinux_2_28"


def uv_command() -> list[str]:
    if shutil.which("uv"):
        return ["uv"]
    beside = Path(sys.executable).with_name("uv")
    if beside.exists():
        return [str(beside)]
    raise WorkshopError("uv is not installed", fix="pip install uv")


def lock(variant: Variant, upgrade: bool = False, output: Path | None = None) -> Path:
    source = REPO / "image" / f"requirements-{variant}.in"
    target = output or source.with_suffix(".lock")
    command = [
        *uv_command(),
        "pip",
        "compile",
        "--generate-hashes",
        "--no-header",
        "--emit-index-url",
        "--python-version",
        PYTHON_VERSION,
        "--python-platform",
        PLATFORM,
        str(source),
        "--output-file",
        str(target),
    ]
    if upgrade:
        command.append("--upgrade")
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise WorkshopError(f"resolving {source.name} failed: {result.stderr.strip()[-2000:]}")
    return target
