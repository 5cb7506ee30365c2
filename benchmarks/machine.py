"""What every benchmark's results file records beside its figures: the machine it ran on, and how
loaded that machine was just before each measurement (figures taken under load are pessimistic)."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import docker


def machine() -> dict[str, Any]:
    """Cores, memory, OS, kernel, the Docker engine's version and cgroup version, Python."""
    info = docker.from_env().info()
    return {
        "cores": os.cpu_count(),
        "memory_bytes": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
        "os": info.get("OperatingSystem"),
        "kernel": platform.release(),
        "docker": info.get("ServerVersion"),
        "cgroup": info.get("CgroupVersion"),
        "python": platform.python_version(),
    }


def load_average() -> list[float]:
    """The 1-, 5- and 15-minute load averages."""
    return [round(value, 2) for value in os.getloadavg()]


def describe(machine_info: dict[str, Any]) -> str:
    """One phrase for a README line: `2 cores, 24 GiB, Debian ..., Docker 20.10 (cgroup v1)`."""
    return (
        f"{machine_info['cores']} cores, {machine_info['memory_bytes'] / 1024**3:.0f} GiB, {machine_info['os']}, "
        f"Docker {machine_info['docker']} (cgroup v{machine_info['cgroup']})"
    )


def replace_readme_block(readme: Path, markers: tuple[str, str], block: str) -> None:
    """Put `block` between the README's two marker comments (a generated table), keeping the rest."""
    text = readme.read_text()
    start, end = markers
    if start not in text or end not in text:
        raise SystemExit(f"{readme.name} has no markers {start} ... {end}")
    before, rest = text.split(start, 1)
    _, after = rest.split(end, 1)
    readme.write_text(f"{before}{start}\n{block}\n{end}{after}")
