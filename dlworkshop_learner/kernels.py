"""A learner's first notebook finds its Python kernel already running.

Opening a notebook starts a kernel: about 0.4 CPU seconds of imports (IPython, ipykernel,
matplotlib's backend registry). When a room opens its notebooks together, those seconds queue on
the host's cores. This kernel manager starts one kernel when the server starts, keeps it out of
the kernel list, and hands it to the first kernel request of the default kind, after moving it to
the notebook's folder as a fresh kernel would have started there. Later kernels start the usual
way. The kernel ahead starts a few seconds after the server, once it answers: in a rush its
imports would otherwise compete with its own server's start and first page (a kernel asked for
before then starts the usual way). It starts only when nobody needs the CPU it takes
(dlworkshop_learner/kernel_ahead.py): not while the learner has a kernel running (never a second
beside the one their first notebook took), the host is saturated, or the hub has starts queued;
until then it looks again every `recheck` seconds.

Named by the server's config (dlworkshop_learner/server_config.py, ServerApp.kernel_manager_class).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from tornado.ioloop import IOLoop
from traitlets import Float, Integer

from dlworkshop_learner.kernel_ahead import SATURATED_SHARE, AheadGate, hub_queue_reader

SETTLE = """\
import os as _dlworkshop_os
_dlworkshop_os.chdir({cwd!r})
_dlworkshop_os.environ.update({env!r})
get_ipython().user_ns["__session__"] = {session!r}
del _dlworkshop_os
"""


class PrestartedKernelManager(AsyncMappingKernelManager):
    prestarted = Integer(1, config=True, help="Kernels of the default kind kept started ahead.")
    refill_after = Float(
        120.0, config=True, help="Seconds after handing a kernel out before starting the next one ahead."
    )
    prestart_delay = Float(
        5.0,
        config=True,
        help="Seconds after the server starts before the kernel ahead starts (the server answers the "
        "hub and serves JupyterLab's first page first).",
    )
    recheck = Float(
        30.0,
        config=True,
        help="Seconds between looks while the kernel ahead waits (a learner's kernel running, the "
        "host busy, starts queued at the hub).",
    )

    host_busy_share = Float(
        SATURATED_SHARE,
        config=True,
        help="Share of the host's cores busy above which the kernel ahead waits (above 1: never on that account).",
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._ahead: list[str] = []
        self._filling: asyncio.Task[None] | None = None
        self._checking: asyncio.Task[None] | None = None
        self._waiting_to_fill: object | None = None
        self._gate = AheadGate(hub_queue_reader(), saturated=self.host_busy_share)
        self._learner_requests = 0  # kernel requests of the learner's so far
        if self.prestarted:
            # The server's loop runs once the server listens; the kernel ahead starts a little later.
            self._fill_later(self.prestart_delay)

    def _fill_later(self, delay: float) -> None:
        loop = IOLoop.current()
        if self._waiting_to_fill is not None:
            loop.remove_timeout(self._waiting_to_fill)
        self._gate.look()  # the host's busy cores are read over the wait
        self._waiting_to_fill = loop.call_later(delay, self._start_filling)

    def _start_filling(self) -> None:
        self._waiting_to_fill = None
        busy = any(task is not None and not task.done() for task in (self._filling, self._checking))
        if not busy:
            self._checking = asyncio.ensure_future(self._fill_when_calm())

    async def _fill_when_calm(self) -> None:
        asked = self._learner_requests
        reason = await self._gate.reason_to_wait(len(self.list_kernels()))
        if reason is None and self._learner_requests != asked:
            reason = "the learner asked for a kernel meanwhile"
        if reason is not None:
            self.log.debug("the kernel ahead waits: %s", reason)
            if self._waiting_to_fill is None:
                self._fill_later(self.recheck)
            return
        self._filling = asyncio.ensure_future(self._fill())

    async def _fill(self) -> None:
        try:
            while len(self._ahead) < self.prestarted:
                kernel_id = await super().start_kernel(kernel_name=self.default_kernel_name)
                client = self.get_kernel(kernel_id).client()
                client.start_channels()
                try:
                    await client.wait_for_ready(timeout=120)
                finally:
                    client.stop_channels()
                self._ahead.append(kernel_id)
                self.log.info("a %s kernel is ready ahead: %s", self.default_kernel_name, kernel_id)
        except Exception:
            self.log.warning("could not start a kernel ahead; kernels start on request", exc_info=True)

    async def _hand_out(self, kernel_id: str, path: str | None, env: dict[str, str]) -> bool:
        """Move the kernel to where the notebook is; False (never an error) if it cannot be used."""
        try:
            kernel = self.get_kernel(kernel_id)
            if not await kernel.is_alive():
                return False
            cwd = self.cwd_for_path(path or "")
            session = env.get("JPY_SESSION_NAME", "")
            extra = {"JPY_SESSION_NAME": session} if session else {}
            client = kernel.client()
            client.start_channels()
            try:
                reply = await client.execute_interactive(
                    SETTLE.format(cwd=cwd, env=extra, session=session),
                    silent=True,
                    store_history=False,
                    timeout=30,
                )
            finally:
                client.stop_channels()
            return reply.get("content", {}).get("status") == "ok"
        except Exception:
            self.log.warning("the kernel started ahead could not be handed out; starting one", exc_info=True)
            return False

    async def start_kernel(
        self, *, kernel_id: str | None = None, path: str | None = None, **kwargs: Any
    ) -> str:
        name = kwargs.get("kernel_name") or self.default_kernel_name
        self._learner_requests += 1
        if kernel_id is None and name == self.default_kernel_name and not self._ahead and self._filling:
            # A request during the start ahead waits for that kernel rather than starting a second.
            with contextlib.suppress(Exception):
                await asyncio.shield(self._filling)
        while kernel_id is None and name == self.default_kernel_name and self._ahead:
            ready = self._ahead.pop(0)
            if ready in self and await self._hand_out(ready, path, kwargs.get("env") or {}):
                self.log.info("Kernel handed out (started ahead): %s", ready)
                self._fill_later(self.refill_after)
                return ready
            with contextlib.suppress(Exception):
                await self.shutdown_kernel(ready, now=True)
        if name == self.default_kernel_name and self._waiting_to_fill is not None:
            # Asked for before the kernel ahead started: this one is the learner's; the look for
            # the next waits (and finds the learner's kernel running).
            self._fill_later(self.refill_after)
        return await super().start_kernel(kernel_id=kernel_id, path=path, **kwargs)

    def list_kernels(self) -> list[dict[str, Any]]:
        """The kernels a learner started; the one kept ahead is not theirs yet."""
        return [model for model in super().list_kernels() if model["id"] not in self._ahead]
