"""The learner image's HEALTHCHECK (`python -m dlworkshop_learner.healthcheck`): healthy when the
running Jupyter server answers its /api."""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from pathlib import Path


def server_answers(runtime: Path) -> bool:
    servers = sorted(runtime.glob("jpserver-*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for server in servers:
        try:
            info = json.loads(server.read_text())
        except (OSError, ValueError):
            continue
        # The recorded URL names the container's host name, which may not resolve inside it.
        url = f"http://127.0.0.1:{info['port']}{info['base_url']}api"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:  # the server's own local address
                if response.status == 200:
                    return True
        except OSError:
            continue
    return False


if __name__ == "__main__":
    runtime = Path(os.environ.get("JUPYTER_RUNTIME_DIR", Path.home() / ".local/share/jupyter/runtime"))
    sys.exit(0 if server_answers(runtime) else 1)
