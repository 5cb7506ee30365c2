"""A kernel that dies mid-episode is noticed at once and reported as what it is: the server's own
status message (parentless, `restarting`/`dead`) ends the wait, and the container's memory cgroup
says whether it was killed for memory. A stand-in kernel websocket plays the Jupyter server."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.server import ServerConnection, serve

from dlworkshop.clients.smoke.jupyter import JupyterServer, KernelDied, run_cells
from dlworkshop.needs import EpisodeNeed, died_reason


async def _kernel_that_dies(socket: ServerConnection, state: str) -> None:
    """Answers busy to the first request, then announces the kernel's death as jupyter_server does
    (a status message with no parent), and never replies to the request itself."""
    request = json.loads(await socket.recv())
    parent = {"msg_id": request["header"]["msg_id"]}
    await socket.send(
        json.dumps({"msg_type": "status", "parent_header": parent, "content": {"execution_state": "busy"}})
    )
    await asyncio.sleep(0.2)
    await socket.send(
        json.dumps({"msg_type": "status", "parent_header": {}, "content": {"execution_state": state}})
    )
    await socket.wait_closed()  # the request itself is never answered


def _run_against(state: str) -> BaseException:
    async def main() -> BaseException:
        async with serve(lambda socket: _kernel_that_dies(socket, state), "127.0.0.1", 0) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            jupyter = JupyterServer(f"http://127.0.0.1:{port}/", "token")
            try:
                # A wait to the timeout would end in TimeoutError, not KernelDied.
                await run_cells(jupyter, "k", ["x = [0] * 10**10"], cell_timeout=20)
            except (KernelDied, TimeoutError) as stopped:
                return stopped
            raise AssertionError("the cell ended normally")

    return asyncio.run(main())


@pytest.mark.parametrize("state", ["restarting", "dead"])
def test_a_kernel_death_ends_the_cell_at_once(state: str) -> None:
    stopped = _run_against(state)
    assert isinstance(stopped, KernelDied), repr(stopped)
    assert str(stopped) == f"the kernel died (the server reports it {state})"


def test_a_cell_timeout_says_how_long_it_waited() -> None:
    async def main() -> BaseException:
        async def silent(socket: ServerConnection) -> None:
            await socket.recv()
            await socket.wait_closed()

        async with serve(silent, "127.0.0.1", 0) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            try:
                await run_cells(JupyterServer(f"http://127.0.0.1:{port}/", "t"), "k", ["1"], cell_timeout=1)
            except TimeoutError as stopped:
                return stopped
            raise AssertionError("the cell ended normally")

    assert str(asyncio.run(main())) == "no reply from the kernel within 1 s"


NEED = EpisodeNeed("04-dollar-street", 900 * 2**20, 120.0, "smoke", 0.1)


def test_a_memory_kill_names_the_quota_and_the_need() -> None:
    before = {"limit": 640 * 2**20, "peak": 300 * 2**20, "oom_kills": 0}
    after = {"limit": 640 * 2**20, "peak": 640 * 2**20, "oom_kills": 1}
    reason = died_reason("the kernel died", after, before, NEED)
    assert reason == (
        "the kernel was killed for memory at 640M; this episode needs about 1G (peak 900 MiB at smoke size)"
    )


def test_a_peak_at_the_limit_counts_as_a_memory_kill_where_no_oom_count_is_readable() -> None:
    after = {"limit": 640 * 2**20, "peak": 640 * 2**20, "oom_kills": None}
    assert died_reason("the kernel died", after, {}, None).startswith(
        "the kernel was killed for memory at 640M"
    )


def test_another_death_says_so_plainly() -> None:
    after = {"limit": 2**31, "peak": 400 * 2**20, "oom_kills": 0}
    reason = died_reason("the kernel died (the server reports it restarting)", after, {"oom_kills": 0}, NEED)
    assert (
        reason
        == "the kernel died (the server reports it restarting), not for memory (peak 400 MiB); see the server's log"
    )
    assert died_reason("the kernel died", None, None, NEED).endswith("(its container may have been killed)")


def test_after_a_death_the_restarted_kernel_is_asked_again_until_it_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Under a tight quota the restarted kernel may not answer the first probe (the restart still
    going, the killed kernel's memory not yet given back): one failed probe is not a dead server."""
    from dlworkshop.clients.smoke import checks

    answers: list[dict[str, int] | None] = [None, None, {"oom_kills": 1, "limit": 640 * 2**20}]
    asked: list[float] = []

    def probe(server: object, kernel: str, timeout: float = 60) -> dict[str, int] | None:
        asked.append(timeout)
        return answers.pop(0)

    monkeypatch.setattr(checks, "memory_probe", probe)
    monkeypatch.setattr(checks.time, "sleep", lambda seconds: None)
    found = checks.probe_after_death(JupyterServer("http://127.0.0.1:9/", "token"), "k", timeout=60)
    assert found == {"oom_kills": 1, "limit": 640 * 2**20} and len(asked) == 3

    # A server that never answers again: asked until the timeout, then None (its container gone).
    monkeypatch.setattr(checks, "memory_probe", lambda server, kernel, timeout=60: None)
    assert checks.probe_after_death(JupyterServer("http://127.0.0.1:9/", "token"), "k", timeout=0) is None
