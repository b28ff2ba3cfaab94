"""SPEC.md §1: names, ids and units."""

from __future__ import annotations

import time

import pytest

from tests.conftest import Connector
from tests.harness import Server

ID_ALPHABET = "ABCXYZabcxyz0189_.:-"


@pytest.mark.parametrize("msg_id", ["a", ID_ALPHABET, "x" * 64, "550e8400-e29b-41d4-a716-446655440000"])
async def test_valid_ids(server: Server, connect: Connector, room: str, msg_id: str) -> None:
    """§1: an id is 1-64 characters of [A-Za-z0-9_.:-]; a UUID is one."""
    client = await connect(server, room)
    await client.say("hi", msg_id)
    frames = await client.until(lambda f: f["type"] == "ack")
    assert frames[-1] == {"type": "ack", "id": msg_id, "seq": 1}


async def test_ts_is_unix_milliseconds(server: Server, connect: Connector, room: str) -> None:
    """§1: ts is Unix time in milliseconds."""
    client = await connect(server, room)
    before = time.time()
    await client.say()
    frame = (await client.until(lambda f: f["type"] == "chat.message"))[-1]
    assert isinstance(frame["payload"]["ts"], int)
    assert before - 60 < frame["payload"]["ts"] / 1000 < time.time() + 60
