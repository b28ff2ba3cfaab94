"""SPEC.md §6: the welcome frame, first on every connection."""

from __future__ import annotations

import re

import pytest

from tests.conftest import Connector, MakeServer
from tests.harness import Server

pytestmark = pytest.mark.cluster  # these need several clients: also run on two processes (SPEC.md §17)


async def test_welcome_contents(server: Server, connect: Connector, room: str) -> None:
    """§6: welcome carries user (from the token), room, members, seq, epoch, resumed and heartbeat."""
    client = await connect(server, room, "alice")
    assert set(client.welcome) == {"type", "payload"}
    payload = client.welcome["payload"]
    assert set(payload) == {"user", "room", "members", "seq", "epoch", "resumed", "heartbeat"}
    assert payload["user"] == "alice"
    assert payload["room"] == room
    assert payload["members"] == ["alice"]
    assert payload["seq"] == 0
    assert isinstance(payload["epoch"], str) and re.fullmatch(r"[A-Za-z0-9_.:\-]{1,64}", payload["epoch"])
    assert payload["resumed"] is False
    assert payload["heartbeat"] == server.setting("CHAT_HEARTBEAT_INTERVAL", 20)


async def test_welcome_members_sorted_and_latest_seq(server: Server, connect: Connector, room: str) -> None:
    """§6: members is the sorted list of users in the room; seq is the room's latest seq; epoch is stable."""
    carol = await connect(server, room, "carol")
    alice = await connect(server, room, "alice")
    for _ in range(3):
        await carol.say()
    await carol.until(lambda f: f["type"] == "chat.message" and f["seq"] == 3)
    bob = await connect(server, room, "bob")
    assert bob.welcome["payload"]["members"] == ["alice", "bob", "carol"]
    assert bob.welcome["payload"]["seq"] == 3
    assert bob.welcome["payload"]["epoch"] == alice.welcome["payload"]["epoch"]


async def test_welcome_heartbeat_follows_setting(make_server: MakeServer, connect: Connector, room: str) -> None:
    """§6, §11: welcome.heartbeat is CHAT_HEARTBEAT_INTERVAL in seconds."""
    server = make_server({"CHAT_HEARTBEAT_INTERVAL": "7.5"})
    client = await connect(server, room)
    assert client.welcome["payload"]["heartbeat"] == 7.5
