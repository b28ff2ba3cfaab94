"""SPEC.md §18: the benchmark baselines /ws/echo and /ws/bench/{room}, there only with CHAT_BENCH_ENDPOINTS=1."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.client import TIMEOUT, handshake_status
from tests.conftest import Connector, MakeServer
from tests.harness import Server

BENCH = {"CHAT_BENCH_ENDPOINTS": "1"}


@pytest.mark.parametrize("path", ["/ws/echo", "/ws/bench/lobby"])
async def test_off_by_default(server: Server, path: str) -> None:
    """§18: without CHAT_BENCH_ENDPOINTS=1 the baselines don't exist: the handshake is refused (403 or 404)."""
    assert await handshake_status(server.ws_url + path) in {403, 404}


async def test_echo(make_server: MakeServer) -> None:
    """§18: /ws/echo sends every (non-empty) text frame back unchanged, in order; no token needed."""
    server = make_server(BENCH)
    texts = ["hello", "ünïcødé 😀", "x" * 60_000, '{"type": "not parsed"}']
    async with connect(server.ws_url + "/ws/echo", open_timeout=TIMEOUT, max_size=None) as websocket:
        for text in texts:
            await websocket.send(text)
        assert [await asyncio.wait_for(websocket.recv(), TIMEOUT) for _ in texts] == texts


async def test_bench_room_broadcast(make_server: MakeServer, room: str) -> None:
    """§18: a text frame sent to /ws/bench/{room} reaches every connection in that room, the sender included,
    each sender's frames in the order sent; other rooms get nothing."""
    server = make_server(BENCH)
    url = f"{server.ws_url}/ws/bench/{room}"
    async with contextlib.AsyncExitStack() as stack:
        members: list[ClientConnection] = []
        for name in "abc":
            websocket = await stack.enter_async_context(connect(url, open_timeout=TIMEOUT))
            members.append(websocket)
            await websocket.send(f"join {name}")  # once its own frame comes back, it is in the room
            for member in members:
                assert await asyncio.wait_for(member.recv(), TIMEOUT) == f"join {name}"
        other = await stack.enter_async_context(connect(f"{url}-other", open_timeout=TIMEOUT))
        for i in range(20):
            for name, websocket in zip("abc", members, strict=True):
                await websocket.send(f"{name}{i}")
        for websocket in members:
            received = [await asyncio.wait_for(websocket.recv(), TIMEOUT) for _ in range(60)]
            for name in "abc":
                assert [text for text in received if text[0] == name] == [f"{name}{i}" for i in range(20)]
        await other.send("mine")
        assert await asyncio.wait_for(other.recv(), TIMEOUT) == "mine"  # and nothing from the room before it


@pytest.mark.parametrize("path", ["/ws/echo", "/ws/bench/lobby"])
async def test_binary_frame(make_server: MakeServer, path: str) -> None:
    """§18: a binary frame to a baseline closes the connection with 1003."""
    server = make_server(BENCH)
    async with connect(server.ws_url + path, open_timeout=TIMEOUT) as websocket:
        await websocket.send(b"\x00\x01")
        await asyncio.wait_for(websocket.wait_closed(), TIMEOUT)
        assert websocket.close_code == 1003


async def test_chat_unchanged_with_baselines_on(make_server: MakeServer, connect: Connector, room: str) -> None:
    """§18, §7: with CHAT_BENCH_ENDPOINTS=1 (as the benchmarks run), the chat itself still works: a message is
    acked and reaches the other member."""
    server = make_server(BENCH)
    alice = await connect(server, room, "alice")
    bob = await connect(server, room, "bob")
    await alice.expect("presence.join")
    msg_id = await alice.say("hello")
    assert (await alice.until(lambda frame: frame["type"] == "ack"))[-1]["id"] == msg_id
    assert (await bob.expect("chat.message"))["payload"]["text"] == "hello"
