"""Chapter 2's own tests, Django style: the ASGI application in-process with Channels' WebsocketCommunicator
(the conformance suite, over real sockets, is in tests/)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from channels.testing import HttpCommunicator, WebsocketCommunicator
from django.conf import settings
from django.test import override_settings

from chat.hub import get_hub
from chatcore.hub import Hub
from chatcore.tokens import issue_token
from chatsite.asgi import application

Frame = dict[str, Any]


def layer_with_capacity(capacity: int) -> dict[str, Any]:
    return {"default": {"BACKEND": "chat.layers.MemoryChannelLayer", "CONFIG": {"capacity": capacity}}}


@pytest.fixture
def chat(request: pytest.FixtureRequest) -> Iterator[None]:
    """A fresh hub and channel layer per test; ``@pytest.mark.chat(capacity=…, **CHAT settings)`` changes them."""
    marker = request.node.get_closest_marker("chat")
    options = dict(marker.kwargs) if marker else {}
    capacity = options.pop("capacity", settings.CHAT.send_queue)
    chat_settings = dataclasses.replace(settings.CHAT, **options)
    with override_settings(CHAT=chat_settings, CHANNEL_LAYERS=layer_with_capacity(capacity)):
        get_hub.cache_clear()
        yield
    get_hub.cache_clear()


@pytest.fixture
async def connect(chat: None) -> AsyncIterator[Any]:
    communicators: list[WebsocketCommunicator] = []

    async def connect(user: str, room: str = "lobby", query: str = "", **kwargs: Any) -> WebsocketCommunicator:
        token = issue_token(user, settings.CHAT)
        communicator = WebsocketCommunicator(application, f"/ws/chat/{room}?token={token}{query}", **kwargs)
        communicators.append(communicator)
        connected, _ = await communicator.connect()
        assert connected
        assert (await communicator.receive_json_from())["type"] == "welcome"
        return communicator

    yield connect
    for communicator in communicators:
        await communicator.disconnect()


async def receive(communicator: WebsocketCommunicator, kind: str = "chat.message") -> Frame:
    """The next frame of this type (skipping the heartbeat's pings and other frames), within 2 seconds."""
    async with asyncio.timeout(2):
        while True:
            frame: Frame = await communicator.receive_json_from(timeout=2)
            if frame["type"] == kind:
                return frame


async def publish_at_once(hub: Hub, room: str, count: int) -> None:
    """Commit ``count`` messages and fan them all out in the same turn of the event loop, as a busy server does."""
    fan_outs = []
    for n in range(count):
        published = await hub.backend.publish(room, "zed", f"burst-{n}", f"burst {n}")
        assert published.message is not None
        fan_outs.append(hub.fanout.publish(room, published.message.frame, seq=published.seq))
    await asyncio.gather(*fan_outs)


async def test_round_trip_through_the_group(connect: Any) -> None:
    """A message goes through the room's group to every member, the sender included; the sender gets the ack."""
    alice = await connect("alice")
    bob = await connect("bob")
    assert (await receive(alice, "presence.join"))["payload"]["user"] == "bob"
    await alice.send_json_to({"type": "chat.message", "id": "m1", "payload": {"text": "hi"}})
    assert (await receive(bob))["payload"] | {"ts": 0} == {"id": "m1", "user": "alice", "text": "hi", "ts": 0}
    own_copy_and_ack = sorted([await alice.receive_json_from(), await alice.receive_json_from()], key=str)
    assert [(f["type"], f["seq"]) for f in own_copy_and_ack] == [("ack", 1), ("chat.message", 1)]  # either order


@pytest.mark.chat(capacity=1)
async def test_messages_dropped_by_the_layer_are_refilled(connect: Any) -> None:
    """Group sends past the layer's capacity are dropped by Channels; the next message reveals the gap, and the
    consumer refills it from history: every member still gets every seq once, in order."""
    alice = await connect("alice")
    bob = await connect("bob")
    await publish_at_once(get_hub(), "lobby", 5)  # capacity 1: each channel keeps the first, drops four
    await alice.send_json_to({"type": "chat.message", "id": "m6", "payload": {"text": "six"}})
    for member in (alice, bob):
        assert [(await receive(member))["seq"] for _ in range(6)] == [1, 2, 3, 4, 5, 6]
    assert await bob.receive_nothing(timeout=0.2)


@pytest.mark.chat(capacity=1, heartbeat_interval=0.1, heartbeat_timeout=60)
async def test_lost_last_messages_are_refilled_at_the_next_heartbeat(connect: Any) -> None:
    """When the dropped messages are the last ones, no later message reveals the gap: the heartbeat does."""
    bob = await connect("bob")
    await publish_at_once(get_hub(), "lobby", 5)
    assert [(await receive(bob))["seq"] for _ in range(5)] == [1, 2, 3, 4, 5]


@pytest.mark.chat(capacity=1, heartbeat_interval=0.1, heartbeat_timeout=60, history_size=2)
async def test_gap_beyond_history_closes_4001(connect: Any) -> None:
    """Messages lost on the way that have already left history can't be refilled: close 4001, the client resumes."""
    bob = await connect("bob")
    await publish_at_once(get_hub(), "lobby", 5)
    assert (await receive(bob))["seq"] == 1
    async with asyncio.timeout(2):
        while (output := await bob.receive_output(timeout=2))["type"] != "websocket.close":
            assert json.loads(output["text"])["type"] == "ping", output
    assert output == {"type": "websocket.close", "code": 4001, "reason": "slow consumer"}


async def test_refusals_before_accept(chat: None) -> None:
    """No token, a bad room or a foreign Origin: refused before accept (daphne turns that into HTTP 403)."""
    token = issue_token("alice", settings.CHAT)
    for path, headers in [
        ("/ws/chat/lobby", []),
        (f"/ws/chat/a.b?token={token}", []),
        (f"/ws/chat/lobby?token={token}&since=-1", []),
        (f"/ws/chat/lobby?token={token}", [(b"origin", b"http://evil.example")]),
        (f"/ws/elsewhere?token={token}", []),
    ]:
        communicator = WebsocketCommunicator(application, path, headers=headers)
        assert await communicator.connect() == (False, 1000), path
    own = f"http://127.0.0.1:{settings.CHAT.port}".encode()
    for headers in ([(b"origin", own)], []):  # the server's own origin, or no Origin at all (not a browser)
        communicator = WebsocketCommunicator(application, f"/ws/chat/lobby?token={token}", headers=headers)
        assert (await communicator.connect())[0] is True
        await communicator.disconnect()


async def test_bad_frames(connect: Any) -> None:
    """Invalid JSON is an error frame; a binary frame closes with 1003 and its reason."""
    carol = await connect("carol")
    await carol.send_to(text_data="{nope")
    assert (await receive(carol, "error"))["payload"]["code"] == "invalid_json"
    await carol.send_to(bytes_data=b"binary")
    assert await carol.receive_output() == {
        "type": "websocket.close",
        "code": 1003,
        "reason": "binary frames are not supported; send JSON text frames",
    }


async def test_token_view_sets_cookie(chat: None) -> None:
    """GET /api/token answers the token and sets it as an HttpOnly, SameSite=Strict cookie."""
    response = await HttpCommunicator(application, "GET", "/api/token?user=alice").get_response()
    assert response["status"] == 200
    token = json.loads(response["body"])["token"]
    cookie = dict(response["headers"])[b"Set-Cookie"].decode()
    assert cookie.startswith(f"chat_token={token};") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
