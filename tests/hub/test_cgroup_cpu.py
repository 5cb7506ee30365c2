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
