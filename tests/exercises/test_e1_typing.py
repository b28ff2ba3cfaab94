"""Exercise 1 (exercises/README.md): typing indicators, a frame that is relayed but never stored."""

from __future__ import annotations

import pytest

from tests.conftest import Connector
from tests.harness import Server

pytestmark = pytest.mark.exercise(1, impl="fastapi")

TYPING = {"type": "typing"}


async def test_typing_reaches_the_others(server: Server, connect: Connector, room: str) -> None:
    """Exercise 1: {"type": "typing"} reaches every other connection as {"type": "typing", "payload": {"user"}}."""
    alice = await connect(server, room, "alice")
    bob = await connect(server, room, "bob")
    assert (await alice.recv())["type"] == "presence.join"
    await alice.send(TYPING)
    answer = await alice.barrier()
    assert answer == [], f"the server answered alice's typing frame with {answer}: it does not know the type yet"
    assert await bob.recv() == {"type": "typing", "payload": {"user": "alice"}}
    assert await bob.barrier() == []


async def test_typing_is_not_a_message(server: Server, connect: Connector, room: str) -> None:
    """Exercise 1: typing has no seq, no ack, no place in history: a later member's replay doesn't show it."""
    alice = await connect(server, room, "alice")
    await alice.send(TYPING)
    await alice.say("hello")
    frames = await alice.settled()
    assert [frame["type"] for frame in frames] in (["ack", "chat.message"], ["chat.message", "ack"]), frames
    carol = await connect(server, room, "carol", since=0)
    assert carol.welcome["payload"]["seq"] == 1
    replay = await carol.barrier()
    assert [frame["type"] for frame in replay] == ["chat.message"], f"carol's replay: {replay}"


async def test_typing_with_fields_is_invalid(server: Server, connect: Connector, room: str) -> None:
    """Exercise 1: a typing frame with any field besides "type" is an invalid_message error (like ping, SPEC §12)."""
    alice = await connect(server, room, "alice")
    bob = await connect(server, room, "bob")
    await alice.recv()  # bob's join
    await alice.send({"type": "typing", "id": "t-1", "payload": {}})
    error = await alice.expect("error")
    assert (error["id"], error["payload"]["code"]) == ("t-1", "invalid_message"), error
    assert await bob.barrier() == []
