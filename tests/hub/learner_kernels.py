"""A learner's running kernel on the shared test hub, as their notebook has it: code runs in it
over the kernel's websocket, in the work folder."""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from dlworkshop.clients.smoke.jupyter import JupyterServer, run_code
from dlworkshop.hubclient import HubClient, HubError
from tests.fixtures.hub import RunningHub


@dataclass
class LearnerKernel:
    name: str
    client: HubClient
    server: JupyterServer
    kernel_id: str

    def run(self, code: str, timeout: float = 300) -> str:
        """Run one cell; what it printed (an exception raised in it fails the caller). In a thread
        of its own: a test's event loop (Playwright's, say) may be running in this one."""
        with ThreadPoolExecutor(1) as thread:
            return thread.submit(run_code, self.server, self.kernel_id, code, timeout).result()

    def stop(self) -> None:
        """Stop the learner's server (the shared test hub's GPU places are few)."""
        with contextlib.suppress(HubError):
            self.client.stop(self.name)


def learner_kernel(running_hub: RunningHub, name: str) -> LearnerKernel:
    """Log in as `name`, start their server, and open a kernel in their work folder."""
    client = running_hub.start_server(name)
    token = client.create_token(name, "dlworkshop test kernel")
    server = JupyterServer(f"{running_hub.url}/user/{name}/", token)
    return LearnerKernel(name, client, server, server.start_session("kernel.ipynb"))
