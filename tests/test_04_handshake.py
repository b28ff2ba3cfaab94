"""SPEC.md §4: who may open a chat WebSocket; every refusal is HTTP 403 before any WebSocket opens."""

from __future__ import annotations

import asyncio
import time

import pytest

from chatcore.limits import HEAD_TIMEOUT, MAX_HEADERS, MAX_LINE
from tests.client import TIMEOUT, chat_url, handshake_status
from tests.conftest import Connector, MakeServer
from tests.harness import Server


@pytest.mark.parametrize("room_name", ["a", "x" * 64, "Lobby_2-b"])
async def test_valid_room_names(server: Server, connect: Connector, room_name: str) -> None:
    """§4: room names are 1-64 of [A-Za-z0-9_-]."""
    client = await connect(server, room_name)
    assert client.welcome["payload"]["room"] == room_name


REFUSALS = {
    "no token": {},
    "empty token": {"token": ""},
    "bad token": {"token": "x"},
    "room too long": {"room": "x" * 65},
    "room with dot": {"room": "a.b"},
    "room with space": {"room": "a%20b"},
    "room non-ascii": {"room": "%C3%A9"},
    "since negative": {"since": "-1"},
    "since not a number": {"since": "one"},
    "since too long": {"since": "1" * 19},
}


@pytest.mark.parametrize("case", list(REFUSALS))
async def test_refused_with_403_and_no_presence(server: Server, connect: Connector, room: str, case: str) -> None:
    """§4: a missing/invalid token, an invalid room or resume point is HTTP 403, and nobody hears of it."""
    bob = await connect(server, room, "bob")
    params = dict(REFUSALS[case])
    target = params.pop("room", room)
    if "token" not in params and case != "no token":
        params["token"] = server.token("alice")
    url = chat_url(server, "ROOM", **params).replace("/ROOM", f"/{target}")
    assert await handshake_status(url) == 403
    assert await bob.barrier() == []


async def test_origin_default(server: Server, connect: Connector, room: str) -> None:
    """§4: by default the server's own http://localhost:PORT and http://127.0.0.1:PORT, or no Origin, are allowed."""
    for origin in (f"http://localhost:{server.port}", f"http://127.0.0.1:{server.port}", None):
        await connect(server, room, origin=origin)
    for origin in ("http://evil.example", f"http://localhost:{server.port + 1}", f"https://127.0.0.1:{server.port}"):
        url = chat_url(server, room, token=server.token("alice"))
        assert await handshake_status(url, origin=origin) == 403, origin


async def test_origin_setting(make_server: MakeServer, connect: Connector, room: str) -> None:
    """§4: CHAT_ALLOWED_ORIGINS (comma-separated) replaces the default list."""
    server = make_server({"CHAT_ALLOWED_ORIGINS": "https://chat.example, https://other.example"})
    await connect(server, room, origin="https://chat.example")
    await connect(server, room, origin="https://other.example")
    url = chat_url(server, room, token=server.token("alice"))
    assert await handshake_status(url, origin=f"http://127.0.0.1:{server.port}") == 403


async def send_head(server: Server, head: bytes) -> tuple[bytes, float]:
    """Send a request head on a socket of its own; return everything the server sent until it closed the
    connection, and how long that took."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    started = time.monotonic()
    try:
        writer.write(head)
        response = await asyncio.wait_for(reader.read(), HEAD_TIMEOUT + TIMEOUT)  # until the server closes
        return response, time.monotonic() - started
    finally:
        writer.close()


UPGRADE = ["Host: 127.0.0.1", "Upgrade: websocket", "Connection: Upgrade"]
UPGRADE += ["Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13"]


def upgrade(path: str, *headers: str) -> bytes:
    """A WebSocket handshake for ``path``, with ``headers`` after the five it needs."""
    return ("\r\n".join([f"GET {path} HTTP/1.1", *UPGRADE, *headers]) + "\r\n\r\n").encode()


def pads(count: int, size: int = 1) -> list[str]:
    return [f"X-Pad-{n}: {'x' * size}" for n in range(count)]


OVERSIZED = {
    "request line": (upgrade("/ws/chat/lobby?pad=" + "x" * 9000), 414),
    "a header": (upgrade("/ws/chat/lobby", "X-Pad: " + "x" * 9000), 431),
    "a 64 KB header": (upgrade("/ws/chat/lobby", "X-Pad: " + "x" * 65536), 431),
    "101 headers": (upgrade("/ws/chat/lobby", *pads(101 - len(UPGRADE))), 431),
    "1000 headers": (upgrade("/ws/chat/lobby", *pads(1000)), 431),
    "16 KB of headers": (upgrade("/ws/chat/lobby", *pads(17, 1000)), 431),
    "HTTP request line": (b"GET /healthz?pad=" + b"x" * 9000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 414),
}


@pytest.mark.parametrize("case", list(OVERSIZED))
async def test_oversized_head(make_server: MakeServer, case: str) -> None:
    """§4.1: a request line over 8 KB is 414; a header line over 8 KB, more than 100 headers or a head over 16 KB
    is 431; within a second, and the connection is closed."""
    server = make_server(private="limits")
    head, status = OVERSIZED[case]
    response, took = await send_head(server, head)
    assert response.startswith(f"HTTP/1.1 {status} ".encode()), response[:200]
    assert took < 1.0


async def test_head_within_limits(make_server: MakeServer, room: str) -> None:
    """§4.1: a handshake at the limits (a request line of 8 KB, 100 headers) opens the WebSocket."""
    server = make_server(private="limits")
    path = f"/ws/chat/{room}?token={server.token('alice')}&pad="
    path += "x" * (MAX_LINE - len(f"GET {path} HTTP/1.1\r\n"))
    head = upgrade(path, *pads(MAX_HEADERS - len(UPGRADE)))
    assert len(head.split(b"\r\n", 1)[0]) + 2 == MAX_LINE
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(head)
        status = await asyncio.wait_for(reader.readline(), TIMEOUT)
        assert status.startswith(b"HTTP/1.1 101 "), status
    finally:
        writer.close()


async def test_slow_head_is_closed(make_server: MakeServer) -> None:
    """§4.1: a connection whose request head is not complete 10 s after it opened is closed, without a response."""
    server = make_server(private="limits")
    response, took = await send_head(server, upgrade("/ws/chat/lobby")[:40])  # and nothing more
    assert response == b""
    assert HEAD_TIMEOUT - 0.5 < took < HEAD_TIMEOUT + 2
