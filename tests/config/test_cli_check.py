"""`dlworkshop check` through the real command: each broken file gets its own message and a nonzero
exit, and every shipped example passes on the machine its comment plans for."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from dlworkshop.capacity import HostFacts, check_capacity
from dlworkshop.settings import parse_bytes, parse_settings

REPO = Path(__file__).resolve().parents[2]
BIG_HOST = ["--host-cpus", "64", "--host-memory", "512G", "--host-gpus", "8"]


def check(config: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dlworkshop", "check", "-c", str(config), *extra],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "learners: {count: many}\nauth: {mode: shared-code, access_code: x}\n",
            "learners.count: Input should be a valid integer",
        ),
        ("auth: {mode: shared-code, access_code: x}\nresorces: {cpu: 1}\n", "resorces: unknown key"),
        (
            "auth: {mode: shared-code, access_code: x}\nresources: {gpu: {policy: shared, per_learner: 0.3}}\n",
            "0.3 does not divide one GPU; use 1/2, 1/3, 1/4",
        ),
        ("auth: {mode: shared-code}\n", "mode shared-code needs auth.access_code"),
        (
            "learners: {count: 100}\nauth: {mode: shared-code, access_code: x}\nresources: {cpu: 1, memory: 8G}\n",
            "resources.memory: all 100 learners need 800G + 1G hub, the host has 512G",
        ),
        (
            "learners: {count: 10}\nauth: {mode: shared-code, access_code: x}\nresources: {gpu: {policy: whole, per_learner: 1}}\n",
            "resources.gpu: all 10 learners need 10 GPU places, the host has 8 GPU places",
        ),
    ],
    ids=[
        "wrong-type",
        "unknown-key",
        "impossible-gpu-share",
        "missing-access-code",
        "memory-overcommit",
        "gpu-overcommit",
    ],
)
def test_broken_files_are_rejected_each_with_its_own_message(
    tmp_path: Path, content: str, message: str
) -> None:
    config = tmp_path / "workshop.yaml"
    config.write_text(content)
    result = check(config, *BIG_HOST)
    assert result.returncode == 2
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("example", sorted((REPO / "examples").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_examples_pass_on_the_machine_they_plan_for(example: Path) -> None:
    planned = re.search(
        r"^# Plan check: dlworkshop check -c \S+ (.*)$", example.read_text(), flags=re.MULTILINE
    )
    assert planned, f"{example.name} must say in a comment which machine it plans for"
    result = check(example, *shlex.split(planned.group(1)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "this host carries" in result.stdout


def test_expected_concurrent_allows_an_overcommitted_roster() -> None:
    base = "auth: {mode: shared-code, access_code: x}\nresources: {cpu: 1, memory: 4G}\n"
    host = HostFacts(cpus=16, memory=parse_bytes("64G"), gpus=0)
    everyone = check_capacity(parse_settings("learners: {count: 40}\n" + base), host)
    assert everyone.problems and everyone.carries == 15
    some = check_capacity(parse_settings("learners: {count: 40, expected_concurrent: 12}\n" + base), host)
    assert not some.problems
    assert "15 learners at once" in some.warnings[0]
