"""SPEC.md §9: history, and resuming after a disconnect with nothing lost and nothing twice."""

from __future__ import annotations

import asyncio

import pytest

from tests.client import Client, Frame
from tests.conftest import Connector, MakeServer
from tests.harness import FAST, Server

pytestmark = pytest.mark.cluster  # these need several clients: also run on two processes (SPEC.md §17)


async def fill(client: Client, count: int) -> list[Frame]:
    """Send ``count`` messages and return them as broadcast."""
    for n in range(count):
        await client.say(f"message {n}")
    frames = await client.until(
        lambda f: f["type"] == "chat.message" and f["payload"]["text"] == f"message {count - 1}"
    )
    return [f for f in frames if f["type"] == "chat.message"]


async def replay(client: Client) -> list[Frame]:
    """The replayed messages: everything queued before the barrier but presence (a replay sends no acks)."""
    frames = [f for f in await client.barrier() if not f["type"].startswith("presence.")]
    assert {f["type"] for f in frames} <= {"chat.message"}, "a replay holds messages only"
    return frames


async def test_no_since_no_replay(server: Server, connect: Connector, room: str) -> None:
    """§9: without ?since the client gets no history."""
    await fill(await connect(server, room, "alice"), 3)
    bob = await connect(server, room, "bob")
    assert bob.welcome["payload"]["resumed"] is False
    assert await replay(bob) == []


async def test_since_zero_replays_everything(server: Server, connect: Connector, room: str) -> None:
    """§9: since=0 replays all retained messages, in order, exactly as first broadcast, without acks."""
    sent = await fill(await connect(server, room, "alice"), 5)
    bob = await connect(server, room, "bob", since=0)
    assert bob.welcome["payload"]["seq"] == 5
    assert await replay(bob) == sent


async def test_resume_with_epoch(server: Server, connect: Connector, room: str) -> None:
    """§9: since=N with the room's epoch resumes: resumed is true and exactly the messages after N follow."""
    alice = await connect(server, room, "alice")
    sent = await fill(alice, 6)
    epoch = alice.welcome["payload"]["epoch"]
    bob = await connect(server, room, "bob", since=2, epoch=epoch)
    assert bob.welcome["payload"]["resumed"] is True
    assert await replay(bob) == sent[2:]
    carol = await connect(server, room, "carol", since=6, epoch=epoch)
    assert carol.welcome["payload"]["resumed"] is True
    assert await replay(carol) == []


async def test_wrong_or_missing_epoch(server: Server, connect: Connector, room: str) -> None:
    """§9: since=N with another (or no) epoch is not a resume: resumed is false and all history is replayed."""
    alice = await connect(server, room, "alice")
    sent = await fill(alice, 4)
    for epoch in ("not-this-room", None):
        bob = await connect(server, room, "bob", since=2, epoch=epoch)
        assert bob.welcome["payload"]["resumed"] is False
        assert await replay(bob) == sent
        await bob.close()


async def test_since_from_the_future(server: Server, connect: Connector, room: str) -> None:
    """§9: since beyond the room's latest seq is not a resume."""
    alice = await connect(server, room, "alice")
    sent = await fill(alice, 2)
    bob = await connect(server, room, "bob", since=9, epoch=alice.welcome["payload"]["epoch"])
    assert bob.welcome["payload"]["resumed"] is False
    assert await replay(bob) == sent


async def test_history_window(make_server: MakeServer, connect: Connector, room: str) -> None:
    """§9: only the last CHAT_HISTORY_SIZE messages are retained; a resume point before them is not a resume."""
    server = make_server({**FAST, "CHAT_HISTORY_SIZE": "5"})
    alice = await connect(server, room, "alice")
    sent = await fill(alice, 8)  # retained: 4..8
    epoch = alice.welcome["payload"]["epoch"]
    gap = await connect(server, room, "bob", since=2, epoch=epoch)
    edge = await connect(server, room, "carol", since=3, epoch=epoch)
    assert gap.welcome["payload"]["resumed"] is False
    assert edge.welcome["payload"]["resumed"] is True
    assert await replay(gap) == sent[3:]
    assert await replay(edge) == sent[3:]


async def test_resume_at_the_live_boundary(make_server: MakeServer, connect: Connector, room: str) -> None:
    """§9: reconnecting with since while others keep sending: every seq exactly once, in order, no gap."""
    server = make_server(FAST)
    writer = await connect(server, room, "writer")
    reader = await connect(server, room, "reader", since=0)
    epoch = reader.welcome["payload"]["epoch"]
    reconnected = asyncio.Event()
    progress = asyncio.Condition()  # the writer stays at most 50 messages ahead: resumes stay within history
    sent = 0
    seen: list[int] = []

    def writer_may_go_on() -> bool:
        return sent - len(seen) < 50 or reconnected.is_set()

    async def keep_sending() -> None:  # until the reader has reconnected 8 times: every reconnect meets live traffic
        nonlocal sent
        while not reconnected.is_set() and sent < 5000:
            await writer.say(f"live {sent}")
            sent += 1
            async with progress:
                await asyncio.wait_for(progress.wait_for(writer_may_go_on), 10)

    sending = asyncio.create_task(keep_sending())
    draining = asyncio.create_task(writer.drain())  # the writer reads its own copies and acks meanwhile
    reconnects = 0
    while reconnects < 8:
        frame = await reader.recv(timeout=10)
        if frame["type"] == "chat.message":
            seen.append(frame["seq"])
            async with progress:
                progress.notify_all()
            if len(seen) % 25 == 0:
                reader.ws.transport.abort()  # the connection drops (a close handshake would be just as fine)
                reader = await connect(server, room, "reader", since=seen[-1], epoch=epoch)
                assert reader.welcome["payload"]["resumed"] is True
                reconnects += 1
    reconnected.set()
    async with progress:
        progress.notify_all()
    await sending
    while seen[-1] < sent:
        frame = await reader.recv(timeout=10)
        if frame["type"] == "chat.message":
            seen.append(frame["seq"])
    draining.cancel()
    assert sending.result() is None and sent < 5000, "the reader did not get through 8 reconnects in time"
    assert seen == list(range(1, sent + 1))


ROOM_TTL = {"CHAT_ROOM_TTL": "2", "CHAT_HEARTBEAT_INTERVAL": "1"}  # a TTL must outlast two heartbeats (§16)


async def test_room_forgotten_after_its_ttl(make_server: MakeServer, connect: Connector, room: str) -> None:
    """§9: a room that has had no member for CHAT_ROOM_TTL seconds forgets its history: a client that resumes
    gets a new epoch, resumed false, and nothing to replay."""
    server = make_server(ROOM_TTL)
    alice = await connect(server, room, "alice")
    await fill(alice, 2)
    epoch = alice.welcome["payload"]["epoch"]
    await alice.close()
    await asyncio.sleep(2 + 1.5)  # ok-sleep: the TTL runs out (and a sweep passes): there is no event to wait on
    back = await connect(server, room, "alice", since=2, epoch=epoch)
    assert (back.welcome["payload"]["epoch"] != epoch, back.welcome["payload"]["resumed"]) == (True, False)
    assert (back.welcome["payload"]["seq"], await replay(back)) == (0, [])
