"""The data path end to end: fetch from an HTTP mirror through the real CLI, verify, stage, and the
upstream lesson's own data calls working with the network unavailable to the process."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.fixtures.data import StagedData

DLWORKSHOP = [sys.executable, "-m", "dlworkshop"]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*DLWORKSHOP, *args], capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=600
    )


def test_fetch_then_verify_through_the_cli(tmp_path: Path, http_mirror: str, fixture_registry: Path) -> None:
    dest = tmp_path / "data"
    fetched = run_cli(
        "data", "fetch", "--dest", str(dest), "--mirror", http_mirror, "--registry", str(fixture_registry)
    )
    assert fetched.returncode == 0, fetched.stderr
    verified = run_cli("data", "verify", "--dest", str(dest), "--registry", str(fixture_registry))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "10 files verified" in verified.stdout
    assert (dest / "urls.json").is_file()


def test_a_corrupted_mirror_file_is_named_deleted_and_never_staged(
    tmp_path: Path, fixture_mirror: Path, fixture_registry: Path
) -> None:
    mirror = tmp_path / "mirror"
    shutil.copytree(fixture_mirror / "penguins", mirror / "penguins")
    (mirror / "penguins" / "penguins.csv").write_text("species\nnot a penguin\n")
    dest = tmp_path / "data"
    result = run_cli(
        "data",
        "fetch",
        "--dest",
        str(dest),
        "--mirror",
        str(mirror),
        "--only",
        "penguins",
        "--registry",
        str(fixture_registry),
    )
    assert result.returncode != 0
    assert "penguins/penguins.csv" in result.stderr
    assert "expected e07636bd" in result.stderr and "got " in result.stderr
    assert "Traceback" not in result.stderr
    assert not (dest / "penguins" / "penguins.csv").exists()
    assert not list((dest / "penguins").glob(".part-*"))


def test_a_corrupted_local_copy_fails_verification(
    tmp_path: Path, staged_data: StagedData, fixture_registry: Path
) -> None:
    dest = tmp_path / "data"
    shutil.copytree(staged_data.root, dest, symlinks=True)
    (dest / "weather" / "metadata.txt").write_text("tampered\n")
    result = run_cli("data", "verify", "--dest", str(dest), "--registry", str(fixture_registry))
    assert result.returncode == 1
    assert "weather/metadata.txt: sha256 mismatch: expected d9caa717" in result.stdout
    assert "1 of 10 files missing or bad" in result.stderr


def test_an_unreachable_mirror_is_one_clear_error(tmp_path: Path) -> None:
    result = run_cli("data", "fetch", "--dest", str(tmp_path), "--mirror", "http://127.0.0.1:9/mirror")
    assert result.returncode == 2
    assert "the data mirror http://127.0.0.1:9/mirror cannot be reached" in result.stderr
    assert "Traceback" not in result.stderr


OFFLINE_LESSON_CALLS = textwrap.dedent(
    """
    import socket
    try:
        socket.create_connection(("pypi.org", 443), timeout=3)
        raise SystemExit("the network is reachable: this test proves nothing")
    except OSError:
        pass

    import pandas as pd
    import seaborn as sns
    import keras

    penguins = sns.load_dataset("penguins")
    assert penguins.shape == (344, 7), penguins.shape
    (x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()
    assert x_train.shape == (50000, 32, 32, 3) and x_test.shape == (10000, 32, 32, 3)
    model = keras.applications.DenseNet121(weights="imagenet", include_top=False, input_shape=(64, 64, 3))
    assert model.count_params() > 7_000_000
    weather = pd.read_csv("{weather_url}")
    assert len(weather) == 3654 and "BASEL_sunshine" in weather.columns
    print("ALL OFFLINE CALLS OK")
    """
)


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs util-linux unshare to cut the network")
def test_the_upstream_lessons_data_calls_work_with_the_network_off(staged_data: StagedData) -> None:
    from dlworkshop.data.registry import load_registry

    weather_url = (
        load_registry(Path(staged_data.env["DLWORKSHOP_REGISTRY"])).datasets["weather-light"].files[0].urls[0]
    )
    script = OFFLINE_LESSON_CALLS.replace("{weather_url}", weather_url)
    result = subprocess.run(
        ["unshare", "--net", sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={**os.environ, **staged_data.env},
        timeout=600,
    )
    assert "ALL OFFLINE CALLS OK" in result.stdout, result.stdout[-2000:] + result.stderr[-4000:]


def test_the_offline_hook_can_be_switched_off(staged_data: StagedData) -> None:
    script = (
        "import urllib.request\n"
        "try:\n"
        "    urllib.request.urlopen('https://raw.githubusercontent.com/mwaskom/seaborn-data/master/penguins.csv', timeout=5)\n"
        "    print('served')\n"
        "except OSError:\n"
        "    print('went to the network')\n"
    )
    for switch, expected in (("0", "went to the network"), ("1", "served")):
        env = {**os.environ, **staged_data.env, "DLWORKSHOP_OFFLINE_URLS": switch}
        result = subprocess.run(
            ["unshare", "--net", sys.executable, "-c", script],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert expected in result.stdout, (switch, result.stdout, result.stderr[-2000:])
