"""What `pip install dlworkshop` gives: the base install in a fresh virtual environment runs
`check`, `init` and `data verify`, and a command whose extra is missing names it; the hub's lock is
the [hub] and [hub-kubernetes] extras resolved."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Packages of the extras: none may come with the base install.
NOT_IN_BASE = ("ansible", "ansible-runner", "pytest-testinfra", "matplotlib", "websockets", "jupyterhub")
# A workshop this 2-core CI machine carries.
SMALL_WORKSHOP = """\
workshop: {name: fresh install}
learners: {count: 2}
auth: {mode: shared-code, access_code: fresh}
resources: {cpu: 0.5, memory: 1G}
"""


@pytest.fixture(scope="module")
def base_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with dlworkshop installed from this checkout, no extras (pip's cache reused).
    The package is copied out first so the build leaves nothing in the checkout."""
    root = tmp_path_factory.mktemp("base-install")
    source = root / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    for package in ("dlworkshop", "dlworkshop_learner"):
        shutil.copytree(REPO / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    installed = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(source)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert installed.returncode == 0, installed.stdout[-3000:] + installed.stderr[-3000:]
    return venv


def run(
    venv: Path, *args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(venv / "bin" / "dlworkshop"), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.slow
def test_the_base_install_has_no_extra(base_venv: Path) -> None:
    listed = subprocess.run(
        [str(base_venv / "bin" / "python"), "-m", "pip", "list", "--format=freeze"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.lower()
    names = {re.sub(r"[-_.]+", "-", line.split("==")[0]) for line in listed.splitlines()}
    assert "dlworkshop" in names
    assert not names & set(NOT_IN_BASE), sorted(names & set(NOT_IN_BASE))


@pytest.mark.slow
def test_check_init_data_verify_and_up_work_with_the_base_install(
    base_venv: Path, tmp_path: Path, real_data: Path
) -> None:
    config = tmp_path / "workshop.yaml"
    config.write_text(SMALL_WORKSHOP)
    checked = run(base_venv, "check", "-c", config, cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "ok: 'fresh install', 2 learners" in checked.stdout

    written = run(base_venv, "init", tmp_path / "new.yaml", cwd=tmp_path)
    assert written.returncode == 0, written.stderr
    assert "auth:" in (tmp_path / "new.yaml").read_text()

    data = tmp_path / "data"
    (data / "penguins").mkdir(parents=True)
    shutil.copy2(real_data / "penguins.csv", data / "penguins" / "penguins.csv")
    verified = run(
        base_venv,
        "data",
        "verify",
        "--dest",
        data,
        "--only",
        "penguins",
        "--registry",
        REPO / "lessons" / "datasets.yaml",
        cwd=tmp_path,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "ok: 1 files verified" in verified.stdout

    # `up` has all it needs up to the engine (an engine that is not there, so nothing is started).
    started = run(
        base_venv, "up", "-c", config, cwd=tmp_path, env={"DOCKER_HOST": "unix:///nonexistent.sock"}
    )
    assert started.returncode == 2, started.stdout + started.stderr
    assert "the Docker engine is not running or not reachable" in started.stderr
    assert "Traceback" not in started.stdout + started.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "extra"),
    [
        (["deploy", "-i", "inventory.ini"], "deploy"),
        (["smoke-test", "--hub", "http://127.0.0.1:9"], "report"),
    ],
)
def test_a_command_whose_extra_is_missing_names_it(
    base_venv: Path, tmp_path: Path, args: list[str], extra: str
) -> None:
    (tmp_path / "workshop.yaml").write_text(SMALL_WORKSHOP)
    result = run(base_venv, *args, "-c", tmp_path / "workshop.yaml", cwd=tmp_path)
    assert result.returncode != 0
    assert f"error: dlworkshop {args[0]} needs the [{extra}] extra" in result.stderr, result.stderr
    assert f"fix: pip install 'dlworkshop[{extra}]'" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def pins(lock: Path) -> dict[str, str]:
    return dict(re.findall(r"^([A-Za-z0-9][\w.-]*)==(\S+)", lock.read_text(), flags=re.MULTILINE))


def test_the_hub_lock_is_the_hub_extra_resolved_with_hashes(tmp_path: Path) -> None:
    """hub/requirements.lock is what `dlworkshop image lock` makes of dlworkshop[hub,hub-kubernetes]: the same
    pins, a hash on each, and dlworkshop itself left out (the image installs the checkout). Re-locked as
    `dlworkshop image lock` does (the shipped pins preferred, the index as of the lock's recorded moment),
    so a release published today cannot fail it: only a change to the requirements can."""
    from dlworkshop.image.lock import HUB_LOCK, lock_hub, resolved_at

    if not shutil.which("uv") and not Path(sys.executable).with_name("uv").exists():
        pytest.fail("uv is not installed (tests/requirements.txt installs it: scripts/setup-host --test)")
    assert resolved_at(HUB_LOCK), (
        "hub/requirements.lock records no resolution time: run `dlworkshop image lock`"
    )
    relocked = tmp_path / "requirements.lock"
    shutil.copy2(HUB_LOCK, relocked)
    lock_hub(output=relocked)
    assert pins(relocked) == pins(HUB_LOCK), "hub/requirements.lock is stale: run `dlworkshop image lock`"
    assert resolved_at(relocked) == resolved_at(HUB_LOCK)
    assert "dlworkshop" not in pins(HUB_LOCK)
    assert {"jupyterhub", "dockerspawner", "jupyterhub-idle-culler", "oauthenticator", "pydantic"} <= set(
        pins(HUB_LOCK)
    )
    for block in re.split(r"\n(?=[A-Za-z0-9])", HUB_LOCK.read_text().split("\n\n", 1)[1]):
        if "==" in block.splitlines()[0]:
            assert "--hash=sha256:" in block, block.splitlines()[0]


@pytest.mark.slow
def test_an_editable_install_prints_no_packaging_deprecation_warning(tmp_path: Path) -> None:
    """`pip install -e .` (scripts/setup-host) builds with the newest setuptools: no warning about
    the project's own metadata (the licence is an SPDX string, not the deprecated table)."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    for package in ("dlworkshop", "dlworkshop_learner"):
        shutil.copytree(REPO / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    installed = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--verbose", "--no-deps", "-e", str(source)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = installed.stdout + installed.stderr
    assert installed.returncode == 0, output[-3000:]
    assert "Successfully installed dlworkshop" in output
    assert not re.search(r"DeprecationWarning|deprecated", output), re.findall(r".*[Dd]eprecat.*", output)
