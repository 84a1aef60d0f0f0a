"""Idle keep-alive connections are closed by the server's sweep, but not one whose next request has
already arrived and waits unread in its socket: closing it would leave that request unanswered (the
client sees a disconnection, and does not retry a POST)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest

from donjon.api.app import DonjonApp
from donjon.api.http11 import HttpProtocol, HttpServer
from donjon.core.context import ServerContext
from tests.support.aio import run_in_own_thread
from tests.support.contexts import context_fixture  # noqa: F401 - the `ctx` fixture

_REQUEST = b"GET /system HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.fixture
def app(ctx: ServerContext) -> Iterator[DonjonApp]:
    yield DonjonApp(ctx)


def _answered(sock: socket.socket) -> bool:
    sock.settimeout(5)
    try:
        return sock.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def test_a_request_waiting_unread_survives_the_idle_timeout(app: DonjonApp) -> None:
    async def main() -> tuple[bool, bool]:
        loop = asyncio.get_running_loop()
        server = HttpServer(app, "127.0.0.1", 0, keep_alive_timeout=0.2)
        await server.start()
        port = server.sockets_info()[0][1]
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
        try:
            while len(server.connections) < 2:
                await asyncio.sleep(0.01)
            waiting: HttpProtocol = next(iter(server.connections))
            assert waiting.transport is not None
            peer = waiting.transport.get_extra_info("peername")
            sender = next(c for c in clients if c.getsockname() == peer)
            idle = next(c for c in clients if c is not sender)
            waiting.transport.pause_reading()  # the loop has not come round to it yet
            sender.sendall(_REQUEST)
            await asyncio.sleep(1.2)  # past the timeout; the sweep (every 0.5 s) has run twice
            assert waiting in server.connections and not waiting.closed
            waiting.transport.resume_reading()
            answered = await loop.run_in_executor(None, _answered, sender)
            idle.settimeout(5)
            closed = await loop.run_in_executor(None, idle.recv, 64) == b""
            return answered, closed
        finally:
            for c in clients:
                c.close()
            await server.stop()

    answered, idle_closed = run_in_own_thread(main)
    assert answered  # the request that waited was answered
    assert idle_closed  # the connection idle with nothing to read was closed
