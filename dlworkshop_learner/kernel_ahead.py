"""When a learner's server may start its kernel ahead: only when nobody needs the CPU it takes.

A kernel started ahead costs about 0.4 CPU seconds of imports. Started in the 09:00 rush, those
seconds queue on the host's cores in front of the servers still waiting for their turn, and the last
learner to arrive pays for them; beside the kernel a learner's first notebook already took, the
kernel ahead only holds memory. So it waits (`AheadGate.reason_to_wait`) while:

- the learner has a kernel running: the kernel ahead is for a first notebook, never a second
  kernel beside one the learner took;
- the host is saturated: more than `saturated` of its cores busy since the last look (/proc/stat,
  the host's, as the hub's admission reads it);
- the hub's admission has learner server starts queued (`GET <hub API>/room/starts`, asked with the
  server's own token; a hub that does not answer it is taken to have none queued).

Pure of Jupyter (the kernel manager, dlworkshop_learner/kernels.py, asks), so tested with fakes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from dlworkshop_learner import layout
from dlworkshop_learner.host_cpu import HostCpu

# A share of the host's cores busy above which it counts as saturated: on 2 cores, 1.5 busy.
SATURATED_SHARE = 0.75


@dataclass
class AheadGate:
    """Says why the kernel ahead should wait now, or None when it may start."""

    queued_starts: Callable[[], Awaitable[int | None]]
    host: HostCpu = field(default_factory=HostCpu)
    saturated: float = SATURATED_SHARE

    def look(self) -> None:
        """Start the host's reading window here (the next `reason_to_wait` reads from now)."""
        self.host.busy_cores()

    async def reason_to_wait(self, learner_kernels: int) -> str | None:
        if learner_kernels:
            return "the learner has a kernel running"
        busy = self.host.busy_cores()
        if busy is not None and busy > self.saturated * self.host.cores:
            return f"the host is busy ({busy:.1f} of {self.host.cores:g} cores)"
        queued = await self.queued_starts()
        if queued:
            return f"{queued} learner server starts are queued at the hub"
        return None


def hub_queue_reader(environ: Mapping[str, str] = os.environ) -> Callable[[], Awaitable[int | None]]:
    """Asks the hub how many starts are queued, with the server's token (None: no hub, or no answer)."""
    api_url, token = environ.get("JUPYTERHUB_API_URL", ""), environ.get("JUPYTERHUB_API_TOKEN", "")

    async def queued() -> int | None:
        if not api_url or not token:
            return None
        from tornado.httpclient import AsyncHTTPClient

        try:
            answer = await AsyncHTTPClient().fetch(
                f"{api_url.rstrip('/')}/{layout.HUB_STARTS_API}",
                headers={"Authorization": f"token {token}"},
                request_timeout=3,
                raise_error=False,
            )
            if answer.code != 200:
                return None
            return int(json.loads(answer.body)["queued"])
        except Exception:  # a look, never a reason to fail
            return None

    return queued
