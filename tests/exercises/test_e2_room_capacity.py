"""Exercise 2 (exercises/README.md): CHAT_ROOM_CAPACITY, and the close code 4003 "room is full"."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from tests.client import TIMEOUT, chat_url
from tests.conftest import Connector, MakeServer
from tests.harness import Server

pytestmark = pytest.mark.exercise(2, impl="channels")

ROOM_FULL = (4003, "room is full")


@pytest.fixture
def small(make_server: MakeServer) -> Server:
    """A server whose rooms take two members."""
    return make_server({"CHAT_ROOM_CAPACITY": "2"})


async def refused(server: Server, room: str, user: str) -> tuple[int, str, list[str]]:
    """Connect as ``user``: the close code and reason the server ends the connection with, and what came first."""
    url = chat_url(server, room, token=await server.atoken(user))
    frames: list[str] = []
    async with ws_connect(url, open_timeout=TIMEOUT, close_timeout=2) as ws:
        try:
            while True:
                frames.append(json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))["type"])
        except ConnectionClosed as exc:
            assert exc.rcvd is not None, "the connection ended without a close frame"
            return exc.rcvd.code, exc.rcvd.reason, frames
        except TimeoutError:
            return 0, "", frames


async def test_a_full_room_closes_4003(small: Server, connect: Connector, room: str) -> None:
    """Exercise 2: a third user in a room of capacity 2 is closed with 4003 "room is full", without a welcome."""
    alice = await connect(small, room, "alice")
    await connect(small, room, "bob")
    assert (await alice.recv())["type"] == "presence.join"
    code, reason, frames = await refused(small, room, "carol")
    assert (code, reason) == ROOM_FULL, f"carol got {frames}, then close {code} {reason!r}, not 4003 'room is full'"
    assert frames == [], f"carol got {frames} before the close: nothing should come, not even a welcome"
    assert await alice.barrier() == [], "the others hear nothing of a user who never got in"


async def test_a_members_second_tab_gets_in(small: Server, connect: Connector, room: str) -> None:
    """Exercise 2: the limit counts members, not connections: a member's second connection is welcome."""
    await connect(small, room, "alice")
    await connect(small, room, "bob")
    tab = await connect(small, room, "alice")
    assert tab.welcome["payload"]["members"] == ["alice", "bob"]


async def test_room_frees_up(small: Server, connect: Connector, room: str) -> None:
    """Exercise 2: once a member leaves, the next user gets in."""
    alice = await connect(small, room, "alice")
    bob = await connect(small, room, "bob")
    assert (await alice.recv())["type"] == "presence.join"
    assert (await refused(small, room, "carol"))[:2] == ROOM_FULL
    await bob.close()
    assert (await alice.recv())["type"] == "presence.leave"
    carol = await connect(small, room, "carol")
    assert carol.welcome["payload"]["members"] == ["alice", "carol"]


async def test_no_limit_by_default(server: Server, connect: Connector, room: str) -> None:
    """Exercise 2: without CHAT_ROOM_CAPACITY, rooms take any number of members."""
    for user in ("a", "b", "c", "d"):
        await connect(server, room, user)
