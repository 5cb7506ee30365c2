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


def test_overcommitted_cpus_are_a_warning_and_memory_stays_an_error(tmp_path: Path) -> None:
    """CPU quotas are limits shared by time: 40 learners at 1 CPU on 16 CPUs start, slower."""
    config = tmp_path / "workshop.yaml"
    config.write_text(
        "learners: {count: 40}\nauth: {mode: shared-code, access_code: x}\nresources: {cpu: 1, memory: 1G}\n"
    )
    result = check(config, "--host-cpus", "16", "--host-memory", "64G", "--host-gpus", "0")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "warning: resources.cpu: all 40 learners may use 40 CPUs, the host has 16 CPUs" in result.stdout
    assert "shared by time" in result.stdout
    assert "this host carries 63 learners at once" in result.stdout
    refused = check(config, "--host-cpus", "16", "--host-memory", "32G", "--host-gpus", "0")
    assert refused.returncode == 2
    assert "resources.memory: all 40 learners need 40G + 1G hub, the host has 32G" in refused.stderr


def problem_lines(stderr: str) -> list[str]:
    return [line.strip() for line in stderr.splitlines() if line.strip().startswith("- ")]


@pytest.mark.docker
def test_up_refuses_on_exactly_what_check_reports_and_creates_nothing(docker_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """One function decides what blocks a start (dlworkshop.local.preflight): here too much memory for
    this machine and a missing accounts file."""
    host = HostFacts.detect()
    learners = int(host.memory // parse_bytes("8G")) + 2
    config = tmp_path / "workshop.yaml"
    config.write_text(
        f"learners: {{count: {learners}}}\n"
        f"auth: {{mode: accounts, accounts_file: {tmp_path / 'missing.csv'}}}\n"
        "resources: {cpu: 0.5, memory: 8G}\n"
        "hub: {container_name: dlw-upstream-refused, network: dlw-upstream-refused, port: 8397}\n"
    )
    checked = check(config)
    started = subprocess.run(
        [sys.executable, "-m", "dlworkshop", "up", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode == started.returncode == 2, started.stdout + started.stderr
    assert problem_lines(checked.stderr) == problem_lines(started.stderr)
    assert [line.split(":")[0] for line in problem_lines(started.stderr)] == [
        "- resources.memory",
        "- auth.accounts_file",
    ]
    assert not docker_client.networks.list(names=["dlw-upstream-refused"])


def test_an_engine_that_stops_containers_when_it_restarts_is_a_warning_where_it_runs() -> None:
    """The deploy turns Docker's live-restore on (learners' kernels outlive an engine restart);
    `check` and `up` say so where this machine's engine has it off, and do not refuse."""
    from dlworkshop.local.preflight import check_start

    settings = parse_settings(
        "auth: {mode: shared-code, access_code: x}\nresources: {cpu: 0.5, memory: 1G}\n"
    )
    host = HostFacts(cpus=16, memory=parse_bytes("64G"), gpus=0)
    off = check_start(settings, host, live_restore=False)
    assert not off.problems
    assert any(
        '"live-restore": true' in warning and "systemctl reload docker" in warning for warning in off.warnings
    )
    for quiet in (
        check_start(settings, host, live_restore=True),
        check_start(settings, host, live_restore=None),  # no engine here, or it does not say
        check_start(settings, host, live_restore=False, this_machine=False),  # a plan for another
    ):
        assert not any("live-restore" in warning for warning in quiet.warnings)


def test_check_lists_the_sites_configuration_files_in_the_order_the_hub_loads_them(tmp_path: Path) -> None:
    site = tmp_path / "jupyterhub_config.d"
    site.mkdir()
    for name in ("20-culler.py", "10-auth.py", "README.txt"):
        (site / name).write_text("# a site setting\n")
    config = tmp_path / "workshop.yaml"
    config.write_text(
        "learners: {count: 2}\nauth: {mode: shared-code, access_code: x}\n"
        f"hub: {{extra_config: {site}}}\n"
    )
    result = check(config, *BIG_HOST)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        f"site configuration: {site}, loaded after ours in this order: 10-auth.py, 20-culler.py"
        in result.stdout
    )
    config.write_text("learners: {count: 2}\nauth: {mode: shared-code, access_code: x}\n")
    result = check(config, *BIG_HOST)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "site configuration: none" in result.stdout
