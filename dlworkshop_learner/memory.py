"""What the learner's server says of its memory for the hub's room view: its container's (or Slurm
job's, or pod's) memory cgroup, as the engine's limit counts it (limit, usage, peak, and how many
processes it killed for memory so far), and the notebooks its kernels run, at
`GET <server>/api/dlworkshop/memory`.

The OOM count lives only in the cgroup (`memory.events` on cgroup v2, `memory.oom_control` on v1):
a kernel killed for memory is restarted by the server, its container runs on, and neither the
engine's stats nor `docker inspect` (OOMKilled is the container's main process) count it. The
server reads its own cgroup, so the room sees the kill on every engine the same way.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dlworkshop_learner import layout

API_PATH = f"api/{layout.MEMORY_API}"
# A limit above this is no limit (cgroup v1 writes the largest page-aligned number).
NO_LIMIT = 2**60


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def _number(text: str | None) -> int | None:
    text = (text or "").strip()
    return int(text) if text.isdigit() else None


def _count(text: str | None, key: str) -> int | None:
    for line in (text or "").splitlines():
        name, _, value = line.partition(" ")
        if name == key and value.strip().isdigit():
            return int(value)
    return None


def cgroup_folders(proc_cgroup: str, root: Path) -> Iterator[tuple[Path, int]]:
    """The memory cgroup folders of this process (from /proc/self/cgroup), v2 or v1; where the
    process sees its own cgroup as the root (a container's namespace), the root itself."""
    for line in proc_cgroup.splitlines():
        parts = line.strip().split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":
            own = root / path.lstrip("/")
            yield (own if (own / "memory.max").exists() else root), 2
        elif "memory" in controllers.split(","):
            own = root / "memory" / path.lstrip("/")
            yield (own if (own / "memory.limit_in_bytes").exists() else root / "memory"), 1


def cgroup_memory(
    root: Path = Path("/sys/fs/cgroup"), proc: Path = Path("/proc/self/cgroup")
) -> dict[str, Any]:
    """{"limit", "usage", "peak", "oom_kills"} of this process's memory cgroup, in bytes and
    kills; None where the cgroup does not say (no limit, no peak file, no cgroup at all)."""
    for folder, version in cgroup_folders(_read(proc) or "", root):
        if version == 2 and (folder / "memory.max").exists():
            return {
                "limit": _number(_read(folder / "memory.max")),  # "max": no limit
                "usage": _number(_read(folder / "memory.current")),
                "peak": _number(_read(folder / "memory.peak")),  # Linux 5.19 and later
                "oom_kills": _count(_read(folder / "memory.events"), "oom_kill"),
            }
        if version == 1 and (folder / "memory.limit_in_bytes").exists():
            limit = _number(_read(folder / "memory.limit_in_bytes"))
            return {
                "limit": limit if limit is not None and limit < NO_LIMIT else None,
                "usage": _number(_read(folder / "memory.usage_in_bytes")),
                "peak": _number(_read(folder / "memory.max_usage_in_bytes")),
                "oom_kills": _count(_read(folder / "memory.oom_control"), "oom_kill"),
            }
    return {"limit": None, "usage": None, "peak": None, "oom_kills": None}


def notebooks_of(sessions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The notebooks the server's kernels run (its sessions), with each kernel's state."""
    return [
        {"path": session.get("path"), "state": (session.get("kernel") or {}).get("execution_state")}
        for session in sessions
        if session.get("type", "notebook") == "notebook" and session.get("path")
    ]


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "dlworkshop_learner.memory"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    from jupyter_server.base.handlers import APIHandler
    from jupyter_server.utils import url_path_join
    from tornado import web

    class MemoryHandler(APIHandler):
        """The owner's (and the hub's room, with the owner's server-only token) view of it."""

        @web.authenticated
        async def get(self) -> None:
            sessions = await self.session_manager.list_sessions()
            self.finish(json.dumps({**cgroup_memory(), "notebooks": notebooks_of(sessions)}))

    route = url_path_join(serverapp.web_app.settings["base_url"], API_PATH)
    serverapp.web_app.add_handlers(".*$", [(route, MemoryHandler)])
