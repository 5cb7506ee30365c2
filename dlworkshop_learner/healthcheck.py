"""The learner image's HEALTHCHECK (`python -m dlworkshop_learner.healthcheck`): healthy when the
running Jupyter server answers its /api.

For a container run on its own: the hub turns the check off for the containers it spawns (it polls
the server itself). Cheap, as it runs in every such container once a minute: no learner hooks (see
process_hooks) and http.client rather than urllib.request.
"""

from __future__ import annotations

import http.client
import json
import os
import sys
from pathlib import Path


def server_answers(runtime: Path) -> bool:
    servers = sorted(runtime.glob("jpserver-*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for server in servers:
        try:
            info = json.loads(server.read_text())
        except (OSError, ValueError):
            continue
        # The recorded URL names the container's host name, which may not resolve inside it.
        connection = http.client.HTTPConnection("127.0.0.1", info["port"], timeout=5)
        try:
            connection.request("GET", f"{info['base_url']}api")
            if connection.getresponse().status == 200:
                return True
        except OSError:
            continue
        finally:
            connection.close()
    return False


if __name__ == "__main__":
    runtime = Path(os.environ.get("JUPYTER_RUNTIME_DIR", Path.home() / ".local/share/jupyter/runtime"))
    sys.exit(0 if server_answers(runtime) else 1)
