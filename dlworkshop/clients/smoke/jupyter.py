"""A Jupyter server driven through its REST and kernel-websocket APIs, as JupyterLab drives it:
notebooks go in through the contents API and their cells run in a kernel of that server, so the
smoke test measures exactly where a learner's code runs."""

from __future__ import annotations

import asyncio
import json
import ssl
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import websockets


class CellError(Exception):
    """A cell raised; the message holds the exception name and value."""


class KernelDied(Exception):
    """The kernel stopped while a cell ran: the server announced it restarting or dead (a kernel
    killed for memory, or crashed), or the server itself went away. The message says which."""


@dataclass
class CellResult:
    seconds: float
    stdout: str
    outputs: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class JupyterServer:
    """A server reachable at base_url (ending in /), authenticated with a token."""

    base_url: str
    token: str
    timeout: float = 60
    # What to trust for an https hub (an SSLContext trusting its CA, where it is not the system's).
    verify: ssl.SSLContext | bool = True

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = httpx.request(
            method,
            self.base_url + path.lstrip("/"),
            headers=self._headers(),
            timeout=self.timeout,
            verify=self.verify,
            **kwargs,
        )
        response.raise_for_status()
        return response

    def put_notebook(self, path: str, notebook: dict[str, Any]) -> None:
        folder = path.rsplit("/", 1)[0] if "/" in path else ""
        if folder:
            self.request("PUT", f"api/contents/{folder}", json={"type": "directory"})
        self.request(
            "PUT", f"api/contents/{path}", json={"type": "notebook", "format": "json", "content": notebook}
        )

    def delete(self, path: str) -> None:
        httpx.delete(
            self.base_url + f"api/contents/{path}",
            headers=self._headers(),
            timeout=self.timeout,
            verify=self.verify,
        )

    def start_session(self, notebook_path: str) -> str:
        """A kernel whose working folder is the notebook's, as when a learner opens it."""
        session = self.request(
            "POST",
            "api/sessions",
            json={
                "path": notebook_path,
                "type": "notebook",
                "name": notebook_path,
                "kernel": {"name": "python3"},
            },
        ).json()
        return session["kernel"]["id"]

    def shutdown_kernel(self, kernel_id: str) -> None:
        httpx.delete(
            self.base_url + f"api/kernels/{kernel_id}",
            headers=self._headers(),
            timeout=self.timeout,
            verify=self.verify,
        )

    def websocket_url(self, kernel_id: str) -> str:
        return self.base_url.replace("http", "ws", 1) + f"api/kernels/{kernel_id}/channels"


def _message(code: str, session: str) -> dict[str, Any]:
    return {
        "header": {
            "msg_id": uuid.uuid4().hex,
            "username": "dlworkshop-smoke-test",
            "session": session,
            "msg_type": "execute_request",
            "version": "5.3",
            "date": "",
        },
        "parent_header": {},
        "metadata": {},
        "content": {
            "code": code,
            "silent": False,
            "store_history": False,
            "allow_stdin": False,
            "stop_on_error": True,
        },
        "channel": "shell",
        "buffers": [],
    }


async def run_cells(
    server: JupyterServer, kernel_id: str, cells: list[str], cell_timeout: float
) -> list[CellResult]:
    """Run cells in order in one kernel; raise CellError at the first failing cell."""
    session = uuid.uuid4().hex
    results = []
    url = server.websocket_url(kernel_id)
    # websockets wants a context for wss:// (the hub's own CA where one was given) and none for ws://.
    tls: ssl.SSLContext | None = None
    if url.startswith("wss"):
        tls = server.verify if isinstance(server.verify, ssl.SSLContext) else ssl.create_default_context()
    async with websockets.connect(
        url, additional_headers=server._headers(), max_size=None, open_timeout=60, ssl=tls
    ) as socket:
        for code in cells:
            request = _message(code, session)
            started = time.monotonic()
            await socket.send(json.dumps(request))
            stdout, outputs = [], []
            while True:
                try:
                    raw = await asyncio.wait_for(socket.recv(), timeout=cell_timeout)
                except TimeoutError:
                    raise TimeoutError(f"no reply from the kernel within {cell_timeout:.0f} s") from None
                except websockets.ConnectionClosed as closed:
                    raise KernelDied(f"the server closed the kernel's connection ({closed})") from None
                reply = json.loads(raw)
                kind, content = reply["msg_type"], reply["content"]
                # The server's own word that the kernel died comes with no parent: a kernel killed
                # (for memory, or a crash) is restarted by the server, which says so at once.
                if kind == "status" and content.get("execution_state") in ("restarting", "dead"):
                    raise KernelDied(f"the kernel died (the server reports it {content['execution_state']})")
                if reply.get("parent_header", {}).get("msg_id") != request["header"]["msg_id"]:
                    continue
                if kind == "stream":
                    stdout.append(content["text"])
                elif kind in ("execute_result", "display_data"):
                    outputs.append(content.get("data", {}))
                elif kind == "error":
                    raise CellError(f"{content['ename']}: {content['evalue']}")
                elif kind == "status" and content["execution_state"] == "idle":
                    break
            results.append(CellResult(time.monotonic() - started, "".join(stdout), outputs))
    return results


def run_code(server: JupyterServer, kernel_id: str, code: str, timeout: float = 300) -> str:
    """Run one snippet; its printed output."""
    return asyncio.run(run_cells(server, kernel_id, [code], timeout))[0].stdout
