"""Chapter 3's own tests, in the websockets library's style: `serve` in-process on port 0, real sockets."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import socket
from collections.abc import AsyncIterator

import httpx2
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import Server
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Origin

from chatcore.hub import Hub
from chatcore.metrics import DISCONNECTS
from chatcore.session import CLOSE_TIMEOUT
from chatcore.settings import Settings
from chatcore.tokens import issue_token
from server import create_server, shutdown

SETTINGS = Settings(secret="test-secret-test-secret-test-secret", port=0, max_message_bytes=1024)


@pytest.fixture
def hub() -> Hub:
    return Hub(SETTINGS)


@pytest.fixture
async def server(hub: Hub) -> AsyncIterator[Server]:
    async with await create_server(SETTINGS, hub) as server:
        yield server


def get_uri(server: Server, path: str, scheme: str = "ws") -> str:
    host, port = server.sockets[0].getsockname()[:2]
    return f"{scheme}://{host}:{port}{path}"


def chat_uri(server: Server, room: str, user: str, query: str = "") -> str:
    return get_uri(server, f"/ws/chat/{room}?token={issue_token(user, SETTINGS)}{query}")


async def recv_json(websocket: ClientConnection) -> dict[str, object]:
    frame = json.loads(await asyncio.wait_for(websocket.recv(), 5))
    assert isinstance(frame, dict)
    return frame


async def handlers_done(server: Server) -> None:
    """Wait until the server has finished with every connection so far (a client may learn of a close first)."""
    if server.handler_tasks:
        await asyncio.wait(server.handler_tasks, timeout=5)


def disconnects(reason: str) -> float:
    value = DISCONNECTS.labels(reason)._value.get()  # this process's registry: every test in this file adds to it
    assert isinstance(value, float)
    return value


async def test_http_routes(server: Server) -> None:
    async with httpx2.AsyncClient(base_url=get_uri(server, "", "http")) as http:
        assert (await http.get("/healthz")).json() == {"status": "ok", "impl": "websockets"}
        token = await http.get("/api/token", params={"user": "alice"})
        assert token.status_code == 200
        cookie = f"chat_token={token.json()['token']}; Max-Age=3600; Path=/; HttpOnly; SameSite=Strict"
        assert token.headers["set-cookie"] == cookie
        assert (await http.get("/api/token", params={"user": "no spaces"})).status_code == 400
        assert (await http.get("/metrics")).headers["content-type"].startswith("text/plain")
        page = await http.get("/")
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert page.headers["content-length"] == str(len(page.content))
        assert (await http.get("/client/chat.css")).headers["content-type"] == "text/css; charset=utf-8"
        for path in ["/nope", "/client/", "/client/..%2fSPEC.md", "/client/%2e%2e/README.md", "/client/%00"]:
            assert (await http.get(path)).status_code == 404, path
        refused = await http.post("/api/token")
        assert refused.status_code == 405
        assert refused.headers["allow"] == "GET"


async def test_chat_round_trip(server: Server) -> None:
    async with connect(chat_uri(server, "lobby", "alice")) as websocket:
        welcome = await recv_json(websocket)
        assert welcome["type"] == "welcome"
        await websocket.send(json.dumps({"type": "chat.message", "id": "m1", "payload": {"text": "hi"}}))
        frames = [await recv_json(websocket), await recv_json(websocket)]
        assert {"type": "ack", "id": "m1", "seq": 1} in frames
        assert any(f["type"] == "chat.message" for f in frames)


async def test_cookie_auth_and_resume(server: Server) -> None:
    cookie = {"Cookie": f'theme=dark; other="{{bad}}"; chat_token={issue_token("bob", SETTINGS)}'}
    async with connect(get_uri(server, "/ws/chat/room-2"), additional_headers=cookie) as websocket:
        epoch = (await recv_json(websocket))["payload"]["epoch"]  # type: ignore[index]
        await websocket.send(json.dumps({"type": "chat.message", "id": "m1", "payload": {"text": "one"}}))
        for _ in range(2):  # the ack and the message
            await recv_json(websocket)
    async with connect(chat_uri(server, "room-2", "bob", f"&since=0&epoch={epoch}")) as websocket:
        assert (await recv_json(websocket))["payload"]["resumed"] is True  # type: ignore[index]
        assert (await recv_json(websocket))["payload"]["text"] == "one"  # type: ignore[index]


async def test_refusals_are_403_and_keep_the_reason_in_the_log(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "chat")
    cases = {
        "no token": (get_uri(server, "/ws/chat/lobby"), None, "No token"),
        "bad room": (chat_uri(server, "a.b", "alice"), None, "Room names"),
        "foreign origin": (chat_uri(server, "lobby", "alice"), "http://evil.example", "http://evil.example"),
    }
    for case, (uri, origin, reason) in cases.items():
        with pytest.raises(InvalidStatus) as refused:
            await connect(uri, origin=Origin(origin) if origin else None)
        assert refused.value.response.status_code == 403, case
        assert refused.value.response.body == b"Forbidden.\n", case  # not the library's own message
        assert reason in caplog.text, case


async def test_default_origins_name_the_port_bound(server: Server) -> None:
    """CHAT_PORT=0 picks a free port when the server starts: the default origins follow it (SPEC.md §4)."""
    port = server.sockets[0].getsockname()[1]
    for origin in (f"http://127.0.0.1:{port}", f"http://localhost:{port}"):
        async with connect(chat_uri(server, "lobby", "alice"), origin=Origin(origin)) as websocket:
            assert (await recv_json(websocket))["type"] == "welcome"


async def test_bad_frames(server: Server) -> None:
    async with connect(chat_uri(server, "lobby", "carol")) as websocket:
        await recv_json(websocket)
        await websocket.send("{nope")
        assert (await recv_json(websocket))["payload"]["code"] == "invalid_json"  # type: ignore[index]
        await websocket.send(b"binary")
        with pytest.raises(ConnectionClosed) as closed:
            await recv_json(websocket)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1003


async def test_close_codes_from_the_library(server: Server) -> None:
    """A frame the library refuses ends the session with the library's code and reason (SPEC.md §15)."""
    before = disconnects("message_too_big"), disconnects("protocol_error")
    async with connect(chat_uri(server, "lobby", "dave")) as websocket:
        await recv_json(websocket)
        await websocket.send("x" * 1025)  # CHAT_MAX_MESSAGE_BYTES is 1024 here
        with pytest.raises(ConnectionClosed) as closed:
            await recv_json(websocket)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1009
    async with connect(chat_uri(server, "lobby", "dave")) as websocket:
        await recv_json(websocket)
        await websocket.send(b"\xff", text=True)  # not UTF-8
        with pytest.raises(ConnectionClosed) as closed:
            await recv_json(websocket)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1007
    await handlers_done(server)
    assert (disconnects("message_too_big"), disconnects("protocol_error")) == (before[0] + 1, before[1] + 1)


async def test_half_close_while_behind_on_reading() -> None:
    """A client that half-closes TCP while data waits for it leaves within the close timeout, not at the
    heartbeat timeout (ChatConnection.eof_received; SPEC.md §10)."""
    settings = dataclasses.replace(SETTINGS, rate_limit=1e5, rate_burst=100_000)
    async with await create_server(settings, Hub(settings)) as server:
        sender = await connect(chat_uri(server, "half", "sender"), max_size=None)
        await recv_json(sender)
        small = socket.socket()  # small buffers on both sides: little data fills them
        small.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        small.connect(server.sockets[0].getsockname()[:2])
        slow = await connect(chat_uri(server, "half", "slow"), max_queue=1, sock=small)
        slow.transport.pause_reading()
        (behind,) = (c for c in server.all_connections if c.remote_address == slow.local_address)
        behind.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        sent = 0
        while behind.transport.get_write_buffer_size() < 16384:  # until the server holds data it can't send
            sent += 1
            await sender.send(json.dumps({"type": "chat.message", "id": f"m{sent}", "payload": {"text": "x" * 900}}))
            while (await recv_json(sender)) != {"type": "ack", "id": f"m{sent}", "seq": sent}:
                pass
        slow.transport.write_eof()
        async with asyncio.timeout(CLOSE_TIMEOUT + 2):
            while (frame := json.loads(await sender.recv()))["type"] != "presence.leave":
                pass
        assert frame["payload"] == {"user": "slow", "count": 1}
        slow.transport.abort()
        await sender.close()


async def test_shutdown(server: Server, hub: Hub) -> None:
    """shutdown(): 1001 to every chat connection; one that doesn't answer is aborted; all within 5 s (SPEC.md §14)."""
    async with (
        connect(chat_uri(server, "lobby", "erin")) as websocket,
        connect(chat_uri(server, "lobby", "mute")) as mute,
    ):
        await recv_json(websocket)
        await recv_json(mute)
        mute.transport.pause_reading()  # it won't see the close frame, so it won't answer it
        await asyncio.wait_for(shutdown(server, hub), 5)
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await recv_json(websocket)  # mute's presence.join, then the close
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1001, "server shutting down")
        assert not server.is_serving()
        assert not server.all_connections  # the mute one too: aborted, its handler done
        mute.transport.abort()  # it would wait for the close frame it doesn't read
