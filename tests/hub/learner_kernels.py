"""A learner's running kernel on the shared test hub, as their notebook has it: code runs in it
over the kernel's websocket, in the work folder."""

from __future__ import annotations

from dataclasses import dataclass

from dlworkshop.smoke.jupyter import JupyterServer, run_code
from tests.fixtures.hub import RunningHub


@dataclass
class LearnerKernel:
    server: JupyterServer
    kernel_id: str

    def run(self, code: str, timeout: float = 300) -> str:
        """Run one cell; what it printed (an exception raised in it fails the caller)."""
        return run_code(self.server, self.kernel_id, code, timeout)


def learner_kernel(running_hub: RunningHub, name: str) -> LearnerKernel:
    """Log in as `name`, start their server, and open a kernel in their work folder."""
    client = running_hub.start_server(name)
    token = client.create_token(name, "dlworkshop test kernel")
    server = JupyterServer(f"{running_hub.url}/user/{name}/", token)
    return LearnerKernel(server, server.start_session("kernel.ipynb"))
