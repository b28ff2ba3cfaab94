"""SPEC.md §8: a retried message id is acknowledged again and never broadcast twice."""

from __future__ import annotations

import pytest

from tests.client import Client, Frame
from tests.conftest import Connector, MakeServer
from tests.harness import FAST, Server

pytestmark = pytest.mark.cluster  # these need several clients: also run on two processes (SPEC.md §17)


async def ack_for(client: Client, msg_id: str) -> Frame:
    frames = await client.until(lambda f: f["type"] == "ack" and f["id"] == msg_id)
    return frames[-1]


async def test_retry_on_same_connection(server: Server, connect: Connector, room: str) -> None:
    """§8: the same id twice is acked twice with the original seq and broadcast once."""
    alice = await connect(server, room, "alice")
    bob = await connect(server, room, "bob")
    await alice.say("once", "m-1")
    assert (await ack_for(alice, "m-1"))["seq"] == 1
    await alice.say("once", "m-1")
    assert (await ack_for(alice, "m-1"))["seq"] == 1
    frames = await bob.settled()
    assert [(f["type"], f["seq"]) for f in frames] == [("chat.message", 1)]


async def test_retry_after_reconnect(server: Server, connect: Connector, room: str) -> None:
    """§8: a retry from a new connection of the same user is acked with the original seq, not broadcast."""
    alice = await connect(server, room, "alice")
    bob = await connect(server, room, "bob")
    await alice.say("before the outage", "m-2")
    await ack_for(alice, "m-2")
    await alice.close()
    alice = await connect(server, room, "alice")
    await alice.say("before the outage, retried with other text", "m-2")
    assert (await ack_for(alice, "m-2"))["seq"] == 1
    frames = [f for f in await bob.settled() if f["type"] == "chat.message"]
    assert [(f["seq"], f["payload"]["text"]) for f in frames] == [(1, "before the outage")]


async def test_same_id_other_user_or_room(server: Server, connect: Connector, room: str) -> None:
    """§8: idempotency is per user and room: the same id from another user, or in another room, is new."""
    alice = await connect(server, room, "alice")
    bob = await connect(server, room, "bob")
    elsewhere = await connect(server, room + "-b", "alice")
    await alice.say("alice", "same")
    await bob.say("bob", "same")
    await elsewhere.say("elsewhere", "same")
    # Two new messages, in the order the server committed them (on two processes, either may be first).
    assert {(await ack_for(alice, "same"))["seq"], (await ack_for(bob, "same"))["seq"]} == {1, 2}
    assert (await ack_for(elsewhere, "same"))["seq"] == 1


async def test_retry_after_history_evicted(make_server: MakeServer, connect: Connector, room: str) -> None:
    """§8: an id is remembered only while its message is retained; after that a retry is a new message."""
    server = make_server({**FAST, "CHAT_HISTORY_SIZE": "3"})
    alice = await connect(server, room, "alice")
    await alice.say("first", "old")
    for n in range(3):
        await alice.say(f"push {n}")
    await alice.until(lambda f: f["type"] == "chat.message" and f["seq"] == 4)
    await alice.say("first", "old")
    assert (await ack_for(alice, "old"))["seq"] == 5
