"""The offline URL hook (dlworkshop_learner.offline_urls), in fresh Python processes, as a learner's
kernel meets it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def run(code: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, **env}, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_registry_urls_are_answered_from_the_local_copy_without_a_connection(tmp_path: Path) -> None:
    (tmp_path / "tiny").mkdir()
    (tmp_path / "tiny" / "a.csv").write_text("x,y\n1,2\n")
    (tmp_path / "urls.json").write_text(
        json.dumps({"https://unreachable.invalid/a.csv?download=1": "tiny/a.csv"})
    )
    code = (
        "import socket, sys\n"
        "def refuse(*a, **k): raise OSError('no network in this test')\n"
        "socket.create_connection = refuse\n"
        "from dlworkshop_learner import offline_urls\n"
        "assert offline_urls.install()\n"
        # urllib is configured when pandas imports it, as in a kernel, not by install() itself.
        "assert 'urllib.request' not in sys.modules, 'urllib.request imported before pandas'\n"
        "import pandas as pd\n"
        "print(pd.read_csv('https://unreachable.invalid/a.csv?download=1').shape)\n"
        "import urllib.request\n"
        "print(urllib.request.urlopen('https://unreachable.invalid/a.csv').read().decode().splitlines()[0])\n"
    )
    out = run(code, {"DLWORKSHOP_DATA": str(tmp_path)})
    assert out.splitlines() == ["(1, 2)", "x,y"]


def test_installing_the_hook_imports_no_urllib(tmp_path: Path) -> None:
    (tmp_path / "urls.json").write_text(json.dumps({"https://a.invalid/x": "t/x"}))
    code = (
        "import sys\nfrom dlworkshop_learner import offline_urls\noffline_urls.install()\n"
        "print('urllib.request' in sys.modules, 'pydantic' in sys.modules)\n"
    )
    assert run(code, {"DLWORKSHOP_DATA": str(tmp_path)}).strip() == "False False"


def test_the_hook_can_be_switched_off_and_is_off_without_copies(tmp_path: Path) -> None:
    (tmp_path / "urls.json").write_text(json.dumps({"https://a.invalid/x": "t/x"}))
    code = "from dlworkshop_learner import offline_urls\nprint(offline_urls.install())\n"
    assert run(code, {"DLWORKSHOP_DATA": str(tmp_path), "DLWORKSHOP_OFFLINE_URLS": "0"}).strip() == "False"
    assert run(code, {"DLWORKSHOP_DATA": str(tmp_path / "none")}).strip() == "False"
