"""`dlworkshop init` through the real command: the file it writes is the commented example sized to
the machine it ran on, it validates through the settings model, and `dlworkshop check` accepts it
there and on the machine its `Plan check:` line names."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from dlworkshop.capacity import HostFacts
from dlworkshop.local.preflight import check_start
from dlworkshop.settings import load_settings, parse_bytes, parse_settings
from dlworkshop.templates import example_config


def dlworkshop(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dlworkshop", *map(str, args)], capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def written(tmp_path: Path) -> Path:
    path = tmp_path / "workshop.yaml"
    result = dlworkshop("init", path)
    assert result.returncode == 0, result.stderr
    assert f"dlworkshop check -c {path}" in result.stdout
    return path


def test_init_writes_the_commented_example_and_it_validates(written: Path) -> None:
    assert written.read_text(encoding="utf-8") == example_config()
    settings = load_settings(written)
    assert settings.auth.mode == "shared-code" and 1 <= settings.learners.total <= 20
    assert settings.image.variant == "cpu" and settings.resources.gpu.policy == "none"


@pytest.mark.parametrize(
    ("cpus", "memory", "learners"),
    [(32, "128G", 20), (2, "24G", 7), (2, "23.5G", 7), (8, "16G", 5), (1, "2G", 1)],
)
def test_the_example_is_sized_to_the_host_and_says_for_which(cpus: int, memory: str, learners: int) -> None:
    """As many of the lesson's 20 learners as the memory carries at once (3G each, 1G for the hub);
    CPUs do not limit the count (shared by time)."""
    host = HostFacts(cpus=cpus, memory=parse_bytes(memory), gpus=0)
    text = example_config(host)
    settings = parse_settings(text)
    assert settings.learners.total == learners
    whole_gib = parse_bytes(memory) // 1024**3
    assert (
        f"# Plan check: dlworkshop check -c workshop.yaml --host-cpus {cpus} --host-memory {whole_gib}G"
        in text
    )
    if learners > 1:
        assert not check_start(settings, host).problems


def test_check_accepts_what_init_wrote_on_the_machine_it_plans_for(written: Path) -> None:
    planned = re.search(r"^# Plan check: dlworkshop check -c \S+ (.*)$", written.read_text(), re.MULTILINE)
    assert planned
    result = dlworkshop("check", "-c", written, *shlex.split(planned.group(1)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok: 'Introduction to deep learning'" in result.stdout


def test_check_accepts_what_init_wrote_on_this_machine(written: Path) -> None:
    result = dlworkshop("check", "-c", written)
    assert result.returncode == 0, result.stdout + result.stderr


def test_init_refuses_to_overwrite_a_file(written: Path) -> None:
    written.write_text("mine: true\n")
    result = dlworkshop("init", written)
    assert result.returncode == 2 and "already exists" in result.stderr
    assert written.read_text() == "mine: true\n"
    assert dlworkshop("init", written, "--force").returncode == 0
    assert written.read_text(encoding="utf-8") == example_config()
