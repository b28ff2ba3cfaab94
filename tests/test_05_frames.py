"""SPEC.md §5: every frame is a UTF-8 text frame holding one JSON object with a "type"."""

from __future__ import annotations

from tests.client import Client
from tests.conftest import Connector
from tests.harness import Server

SERVER_TYPES = {"welcome", "chat.message", "ack", "presence.join", "presence.leave", "ping", "pong", "error"}


async def test_ping_is_answered_with_pong(server: Server, connect: Connector, room: str) -> None:
    """§5: {"type": "ping"} from the client is answered {"type": "pong"}."""
    client = await connect(server, room)
    await client.send({"type": "ping"})
    assert await client.recv() == {"type": "pong"}


async def test_server_frames_are_typed_json_text(server: Server, connect: Connector, room: str) -> None:
    """§5: every server frame is a text frame with a JSON object whose type is one of the SPEC's."""
    alice: Client = await connect(server, room, "alice")
    bob = await connect(server, room, "bob")
    frames = [alice.welcome, bob.welcome]
    frames += await alice.until(lambda f: f["type"] == "presence.join")
    await alice.send({"type": "ping"})
    await alice.send("{")
    msg_id = await alice.say("hi")
    frames += await alice.until(lambda f: f["type"] == "ack" and f["id"] == msg_id)
    frames += await bob.until(lambda f: f["type"] == "chat.message")
    await bob.close()
    frames += await alice.until(lambda f: f["type"] == "presence.leave")
    assert {f["type"] for f in frames} == SERVER_TYPES - {"ping"}
