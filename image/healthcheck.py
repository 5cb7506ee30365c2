"""HEALTHCHECK of the learner image: healthy when the running Jupyter server answers its /api."""

import json
import os
import sys
import urllib.request
from pathlib import Path

runtime = Path(os.environ.get("JUPYTER_RUNTIME_DIR", Path.home() / ".local/share/jupyter/runtime"))
servers = sorted(runtime.glob("jpserver-*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
for server in servers:
    info = json.loads(server.read_text())
    # The recorded URL names the container's host name, which may not resolve inside it.
    url = f"http://127.0.0.1:{info['port']}{info['base_url']}api"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # the server's own local address
            if response.status == 200:
                sys.exit(0)
    except OSError:
        continue
sys.exit(1)
