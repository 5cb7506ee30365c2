"""Fixtures shared by every test group. One fixture per real thing (engine, data mirror, images,
hub, test host), each built once per run and torn down even on failure. Concern-specific fixtures
live in tests/fixtures/<concern>.py and are registered here."""

from __future__ import annotations

import importlib.util
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import dlworkshop.engines  # noqa: F401  (the engines' tables, as the CLI and the hub load them)

REPO = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI") == "true"

# Each module holds the fixtures of one concern; listed here so every test group can use them.
_FIXTURE_MODULES = ["pipeline", "data", "images", "hub", "smoke", "browser", "ansible", "slurm", "faults"]
pytest_plugins = [
    f"tests.fixtures.{name}"
    for name in _FIXTURE_MODULES
    if importlib.util.find_spec(f"tests.fixtures.{name}") is not None
]


# Real copies of public datasets, kept in the repository with their licences and sources.
REAL_DATA = REPO / "tests" / "data" / "real"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The real penguins and weather files (tests/data/real/SOURCES.md)."""
    return REAL_DATA


def docker_cli() -> str:
    """The Debian docker client: it speaks BuildKit (secrets) where a newer one may lack buildx."""
    return "/usr/bin/docker" if Path("/usr/bin/docker").exists() else (shutil.which("docker") or "docker")


@pytest.fixture(scope="session")
def docker_client() -> Iterator[object]:
    """A client for the engine scripts/setup-host started. Without an engine Docker tests cannot
    run: in CI that is a failure, on a developer's machine a skip that says why."""
    import docker

    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:
        message = f"no Docker engine reachable ({exc}); scripts/setup-host --test starts one"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    yield client
    client.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that need none of the run's images go first: they run while the images build in the
    background (tests/fixtures/pipeline.py) instead of after the first image test has waited for its
    build with a core idle. Tests that re-create the shared hub run after every test that uses it.
    The order is kept otherwise (a stable sort)."""
    from tests.fixtures.pipeline import needed

    items.sort(
        key=lambda item: (
            bool(needed([item])),
            item.get_closest_marker("recreates_shared_hub") is not None,
        )
    )


_SESSION_START = pytest.StashKey[float]()


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_SESSION_START] = time.monotonic()


@pytest.hookimpl(trylast=True)  # after the slowest tests, before the short summary: in CI's tail
def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    """Where the run's time went, per test file and image build (tests/fixtures/run_time.py)."""
    from tests.fixtures.pipeline import PIPELINE
    from tests.fixtures.run_time import seconds_per_file, summary, test_reports

    reports = test_reports(terminalreporter.stats)
    if not reports:
        return
    pipeline = config.stash.get(PIPELINE, None)
    wall = time.monotonic() - config.stash.get(_SESSION_START, time.monotonic())
    for line in summary(seconds_per_file(reports), pipeline.took if pipeline else {}, wall):
        terminalreporter.write_line(line)


# What a whole run takes of the disk under Docker's data root at its peak (images, the Slurm test
# cluster, the deploy test host and the archives it is deployed from): 18.3 GB in a fresh run, 2026-11-29,
# before the CUDA learner image joined every run: 7.69 GB more
# (benchmarks/results/cuda-image-cost-20261207T134748Z.json).
FULL_RUN_DISK_GB = 28


def pytest_report_header() -> str:
    """Free disk where the images go, beside what a full run needs: a run that fills the disk fails
    in many places at once (the hub refuses starts below resources.disk_free_min), so say it first."""
    root = Path("/var/lib/docker")
    try:
        free = shutil.disk_usage(root).free / 2**30
    except OSError:  # not there, or not readable by this user: the root file system stands in
        root = Path("/")
        free = shutil.disk_usage(root).free / 2**30
    line = f"disk: {free:.0f} GB free under {root}; a full run needs about {FULL_RUN_DISK_GB} GB"
    return line + (" (NOT ENOUGH: expect failures from a full disk)" if free < FULL_RUN_DISK_GB else "")
