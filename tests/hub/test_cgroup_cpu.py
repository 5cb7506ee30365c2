"""A container's CPU from the host's cgroup files, in each layout Docker uses (Docker's stats API
reports 0 on some hosts: dlworkshop/cgroup_cpu.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlworkshop.cgroup_cpu import container_cpu_seconds

ID = "0123abcd" * 8


@pytest.mark.parametrize(
    ("relative", "name", "text"),
    [
        (f"cpuacct/docker/{ID}", "cpuacct.usage", "1500000000\n"),  # v1, cgroupfs driver
        (f"cpu,cpuacct/system.slice/docker-{ID}.scope", "cpuacct.usage", "1500000000\n"),  # v1, systemd
        (f"system.slice/docker-{ID}.scope", "cpu.stat", "usage_usec 1500000\nuser_usec 1000000\n"),  # v2
        (f"docker/{ID}", "cpu.stat", "usage_usec 1500000\n"),  # v2, cgroupfs driver
    ],
)
def test_a_container_cpu_is_read_in_every_layout(tmp_path: Path, relative: str, name: str, text: str) -> None:
    folder = tmp_path / relative
    folder.mkdir(parents=True)
    (folder / name).write_text(text)
    assert container_cpu_seconds(ID, tmp_path) == pytest.approx(1.5)


def test_no_cgroup_of_that_container_is_none(tmp_path: Path) -> None:
    (tmp_path / "cpuacct" / "docker" / "another").mkdir(parents=True)
    assert container_cpu_seconds(ID, tmp_path) is None
    assert container_cpu_seconds(ID, tmp_path / "not-mounted") is None


def test_an_empty_or_short_id_never_reads_a_parent_cgroup(tmp_path: Path) -> None:
    """A stopped server's spawner forgets its container id: reading "docker/" would be the CPU of
    every container together (what once made the hub admit one start at a time)."""
    for relative in ("cpuacct/docker", "cpuacct/docker/0123abcd"):
        (tmp_path / relative).mkdir(parents=True, exist_ok=True)
        (tmp_path / relative / "cpuacct.usage").write_text("9561830000000\n")
    assert container_cpu_seconds("", tmp_path) is None
    assert container_cpu_seconds("0123abcd", tmp_path) is None
