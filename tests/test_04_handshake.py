"""SPEC.md §4: who may open a chat WebSocket; every refusal is HTTP 403 before any WebSocket opens."""

from __future__ import annotations

import pytest

from tests.client import chat_url, handshake_status
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
