"""A second backend for the interface tests: an "engine" inside the test process, where each
learner's server is an asyncio HTTP server on loopback. It implements the same `Backend` interface
as the Docker backend and passes the same tests (tests/hub/test_backend_interface.py)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, ClassVar

from jupyterhub.spawner import Spawner
from traitlets import Float, Integer

from hub.backends.base import Backend, LearnerServer, LearnerUsage
from hub.spawning import WorkshopSpawner


@dataclass
class _Running:
    server: asyncio.Server
    port: int
    exit_code: int | None = None


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
    await writer.drain()
    writer.close()


class InProcessSpawner(Spawner):
    """The fake engine's own spawner (what DockerSpawner is to the Docker backend)."""

    exit_code = Integer(None, allow_none=True, config=True, help="The server dies at once with this code.")
    start_delay = Float(
        0.5, config=True, help="Seconds the engine takes to start a server, as a real one does."
    )
    # The engine's view of what runs, by learner: the source of truth, as Docker's labels are.
    engine: ClassVar[dict[str, _Running]] = {}

    async def start(self) -> tuple[str, int]:
        await asyncio.sleep(self.start_delay)
        server = await asyncio.start_server(_answer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        running = _Running(server, port)
        if self.exit_code is not None:  # a server that fails while starting
            server.close()
            running.exit_code = self.exit_code
        self.engine[self.user.name] = running
        return "127.0.0.1", port

    async def get_url(self) -> str:
        """Where the engine runs the learner's server (as DockerSpawner's container address)."""
        running = self.engine.get(self.user.name)
        if running is None:
            return await super().get_url()
        return f"http://127.0.0.1:{running.port}{self.server.base_url}"

    async def poll(self) -> int | None:
        running = self.engine.get(self.user.name)
        if running is None:
            return 0
        return running.exit_code

    async def stop(self, now: bool = False) -> None:
        running = self.engine.pop(self.user.name, None)
        if running is not None:
            running.server.close()


class InProcessWorkshopSpawner(WorkshopSpawner, InProcessSpawner):
    pass


class InProcessBackend(Backend):
    name = "in-process"

    @property
    def spawner_class(self) -> type[WorkshopSpawner]:
        return InProcessWorkshopSpawner

    def configure_engine(self, c: Any) -> None:
        c.InProcessSpawner.exit_code = None

    def learner_servers(self) -> list[LearnerServer]:
        return [
            LearnerServer(
                user=user,
                engine_id=str(running.port),
                state="stopped" if running.exit_code is not None else "running",
            )
            for user, running in InProcessSpawner.engine.items()
        ]

    def learner_usage(self, servers: list[LearnerServer]) -> dict[str, LearnerUsage]:
        """The engine's figures: an in-process "server" uses no CPU of its own and has no folder."""
        resources = self.settings.resources
        return {
            server.user: LearnerUsage(
                cpu_used=0.0, cpu_limit=resources.cpu, memory_limit=resources.memory, work_bytes=0
            )
            for server in servers
            if server.state != "stopped"
        }
