from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def run(code: str, env: dict[str, str]) -> str:
    import os

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
        "import socket\n"
        "def refuse(*a, **k): raise OSError('no network in this test')\n"
        "socket.create_connection = refuse\n"
        "from dlworkshop import offline\n"
        "assert offline.install()\n"
        "import sys; assert 'urllib.request' not in sys.modules or True\n"
        "import pandas as pd\n"
        "print(pd.read_csv('https://unreachable.invalid/a.csv?download=1').shape)\n"
        "import urllib.request\n"
        "print(urllib.request.urlopen('https://unreachable.invalid/a.csv').read().decode().splitlines()[0])\n"
    )
    out = run(code, {"DLWORKSHOP_DATA": str(tmp_path)})
    assert out.splitlines() == ["(1, 2)", "x,y"]


def test_installing_the_hook_imports_no_urllib(tmp_path: Path) -> None:
    (tmp_path / "urls.json").write_text(json.dumps({"https://a.invalid/x": "t/x"}))
    code = "import sys\nfrom dlworkshop import offline\noffline.install()\nprint('urllib.request' in sys.modules, 'pydantic' in sys.modules)\n"
    assert run(code, {"DLWORKSHOP_DATA": str(tmp_path)}).strip() == "False False"
