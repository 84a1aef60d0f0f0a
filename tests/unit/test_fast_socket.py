"""The association socket acknowledges a partly received PDU at once (network/fast.py `quick_ack`):
a peer with Nagle's algorithm on holds the rest of its PDU until then, and Linux would delay that
acknowledgement up to 40 ms. Checked on a real loopback TCP connection; what is asserted is the
mechanism (when the socket asks for the acknowledgement), not a duration."""

from __future__ import annotations

import queue
import socket
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

import donjon.network.fast as fast


@pytest.fixture
def connection() -> Iterator[tuple[socket.socket, socket.socket]]:
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname())
    server, _ = listener.accept()
    listener.close()
    try:
        yield client, server
    finally:
        client.close()
        server.close()


def _association_socket(sock: socket.socket) -> fast.FastSocket:
    events: queue.Queue[str] = queue.Queue()  # (the wrapper announces the connection: Evt5)
    assoc = SimpleNamespace(network_timeout=5, dul=SimpleNamespace(event_queue=events))
    return fast.FastSocket(assoc, client_socket=sock)  # type: ignore[arg-type]


def test_a_partly_received_pdu_is_acknowledged_at_once(connection: tuple[socket.socket, socket.socket],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    client, server = connection
    server.settimeout(5)  # a read that never completes fails the test instead of hanging it
    asked: list[socket.socket] = []

    def acknowledged(sock: socket.socket) -> None:
        asked.append(sock)
        client.sendall(b"efghijklmnop")  # as a peer with Nagle on: the rest once acknowledged

    monkeypatch.setattr(fast, "quick_ack", acknowledged)
    wrapped = _association_socket(server)

    client.sendall(b"\x04\x00\x00\x00\x00\x10")  # a P-DATA-TF header: its body comes later
    assert wrapped.recv(6) == bytearray(b"\x04\x00\x00\x00\x00\x10")
    assert asked == []  # read whole at once: nothing to hasten

    client.sendall(b"abcd")  # the first part of the body only
    assert wrapped.recv(16) == bytearray(b"abcdefghijklmnop")
    assert asked == [server]  # acknowledged before waiting for the rest


def test_quick_ack_is_harmless_on_any_socket(connection: tuple[socket.socket, socket.socket]) -> None:
    client, server = connection
    fast.quick_ack(server)  # a live TCP connection (Linux: TCP_QUICKACK set; elsewhere nothing)
    server.close()
    fast.quick_ack(server)  # a closed one: ignored
    pair = socket.socketpair()
    try:
        fast.quick_ack(pair[0])  # not TCP: ignored
    finally:
        pair[0].close()
        pair[1].close()
    client.sendall(b"x")  # the other end is still usable
