"""SPEC.md §13: frame size, binary frames, the rate limit and slow consumers."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.exceptions import ConnectionClosed

from tests.client import message, metric, wait_for_metric
from tests.conftest import Connector, MakeServer
from tests.harness import FAST, Server


def padded_ping(size: int) -> str:
    """A valid ping frame of exactly ``size`` bytes (JSON allows trailing whitespace)."""
    frame = '{"type": "ping"}'
    return frame + " " * (size - len(frame))


@pytest.mark.parametrize("limit", [None, 1024])
async def test_frame_size_limit(make_server: MakeServer, connect: Connector, room: str, limit: int | None) -> None:
    """§13.1: a frame of CHAT_MAX_MESSAGE_BYTES is processed; one byte more closes the connection with 1009."""
    server = make_server({"CHAT_MAX_MESSAGE_BYTES": str(limit)} if limit else {})
    size = limit or 65536
    too_big = await metric(server, "chat_disconnects_total", {"reason": "message_too_big"})
    alice = await connect(server, room, "alice")
    bob = await connect(server, room, "bob")
    await alice.recv()  # bob's join
    await alice.send(padded_ping(size))
    assert await alice.recv() == {"type": "pong"}
    await alice.send(padded_ping(size + 1))
    assert (await alice.closed())[0] == 1009
    assert (await bob.expect("presence.leave"))["payload"]["user"] == "alice"
    await wait_for_metric(server, "chat_disconnects_total", too_big + 1, {"reason": "message_too_big"})


async def test_binary_frame_closes_1003(server: Server, connect: Connector, room: str) -> None:
    """§13.2: a binary frame closes the connection with 1003."""
    client = await connect(server, room)
    await client.send(json.dumps({"type": "ping"}).encode())
    assert await client.closed() == (1003, "binary frames are not supported; send JSON text frames", [])


async def test_nothing_after_a_binary_frame(server: Server, connect: Connector, room: str) -> None:
    """§13.2: a frame that arrives after the binary frame is not processed: the connection has ended."""
    bob = await connect(server, room, "bob")
    alice = await connect(server, room, "alice")
    await bob.expect("presence.join")
    alice.write_at_once(b"binary", json.dumps(message("too late")))
    assert (await alice.closed())[0] == 1003
    assert (await bob.expect("presence.leave"))["payload"]["user"] == "alice"
    assert await bob.barrier() == []


SLOW_RATE = {"CHAT_RATE_LIMIT": "0.01", "CHAT_RATE_BURST": "3"}  # 3 frames, then one per 100 s


async def test_rate_limited(make_server: MakeServer, connect: Connector, room: str) -> None:
    """§13.3: past the burst, frames get error rate_limited (with the id) and are neither broadcast nor acked."""
    server = make_server(SLOW_RATE)
    alice = await connect(server, room, "alice")
    bob = await connect(server, room, "bob")
    await alice.recv()  # bob's join
    ids = [await alice.say(f"m{n}") for n in range(5)]
    await alice.send({"type": "ping"})
    frames = [await alice.recv() for _ in range(3 * 2 + 3)]  # alice has no token left for a barrier ping
    acks = [f["id"] for f in frames if f["type"] == "ack"]
    errors = [f for f in frames if f["type"] == "error"]
    assert acks == ids[:3]
    assert [(e["id"], e["payload"]["code"]) for e in errors] == [(i, "rate_limited") for i in [*ids[3:], None]]
    seen = await bob.barrier()
    assert [f["payload"]["id"] for f in seen] == ids[:3]


async def test_rate_limit_close_1008(make_server: MakeServer, connect: Connector, room: str) -> None:
    """§13.3: the 50th consecutive rate-limited frame closes the connection with 1008 instead of an error."""
    server = make_server(SLOW_RATE)
    limited = await metric(server, "chat_disconnects_total", {"reason": "rate_limited"})
    alice = await connect(server, room, "alice")
    for n in range(3 + 50):
        await alice.say(f"m{n}")
    code, reason, frames = await alice.closed()
    assert (code, reason) == (1008, "rate limit exceeded")
    await wait_for_metric(server, "chat_disconnects_total", limited + 1, {"reason": "rate_limited"})
    assert sum(f["type"] == "error" and f["payload"]["code"] == "rate_limited" for f in frames) == 49
    assert sum(f["type"] == "ack" for f in frames) == 3


async def test_pong_is_not_rate_limited(make_server: MakeServer, connect: Connector, room: str) -> None:
    """§13.3: pongs (answers to the server's pings) never count against the rate limit."""
    server = make_server(SLOW_RATE)
    alice = await connect(server, room, "alice")
    for _ in range(60):
        await alice.send({"type": "pong"})
    await alice.send({"type": "ping"})
    assert await alice.recv() == {"type": "pong"}


SLOW = {**FAST, "CHAT_SEND_QUEUE": "16"}
TEXT = "x" * 1900  # big frames fill the socket buffers sooner


async def test_slow_consumer(make_server: MakeServer, connect: Connector, room: str) -> None:
    """§13.4: a member that stops reading is closed with 4001; the others get everything; it resumes with since."""
    server = make_server(SLOW)
    fast = await connect(server, room, "fast")
    slow = await connect(server, room, "slow", reading=False)
    epoch = slow.welcome["payload"]["epoch"]
    await fast.expect("presence.join")
    fast_seqs: list[int] = []
    acks: list[int] = []
    kicked: list[str] = []
    progress = asyncio.Condition()

    async def read_fast() -> None:
        while True:
            frame = await fast.recv(timeout=30)
            if frame["type"] == "chat.message":
                fast_seqs.append(frame["seq"])
            elif frame["type"] == "ack":
                acks.append(frame["seq"])
            elif frame["type"] == "presence.leave":
                kicked.append(frame["payload"]["user"])
            async with progress:
                progress.notify_all()

    async def until(items: list[int], count: int) -> None:
        async with progress:
            await asyncio.wait_for(progress.wait_for(lambda: len(items) == count), 20)

    reading = asyncio.create_task(read_fast())
    sent = 0
    while not kicked and sent < 20_000:  # bounded: 40 MB at most; socket buffers take a few MB
        for _ in range(20):
            await fast.say(TEXT)
        sent += 20
        await until(acks, sent)  # paced by the server, so sending stops soon after the kick
    assert kicked == ["slow"], f"the slow member was not closed after {sent} messages"
    await until(fast_seqs, sent)
    reading.cancel()
    assert fast_seqs == list(range(1, sent + 1))

    code, reason, frames = await slow.closed(timeout=20)
    assert (code, reason) == (4001, "slow consumer")
    got = [f["seq"] for f in frames if f["type"] == "chat.message"]
    assert got == list(range(1, len(got) + 1)), "a slow consumer's stream must stop without a gap"
    back = await connect(server, room, "slow", since=len(got), epoch=epoch)
    assert back.welcome["payload"]["resumed"] is True
    replay = await back.until(lambda f: f["type"] == "chat.message" and f["seq"] == sent, timeout=20)
    assert [f["seq"] for f in replay if f["type"] == "chat.message"] == list(range(len(got) + 1, sent + 1))
    await wait_for_metric(server, "chat_disconnects_total", 1, {"reason": "slow_consumer"})  # its own server


@pytest.mark.parametrize(("size", "closed"), [(10_000, False), (65_537, True)], ids=["10 KB", "64 KB + 1"])
async def test_fragmented_message(server: Server, connect: Connector, room: str, size: int, closed: bool) -> None:
    """§13.1: the limit is on a message's bytes, however many fragments carry it: a ping padded to 10,000 bytes
    and sent in 10,000 one-byte fragments is answered; one byte more than the limit closes with 1009."""
    client = await connect(server, room)
    text = padded_ping(size).encode()
    protocol = client.ws.protocol
    protocol.send_text(text[:1], fin=False)
    for n in range(1, size):
        protocol.send_continuation(text[n : n + 1], fin=n == size - 1)
    client.ws.transport.write(b"".join(protocol.data_to_send()))
    if closed:
        assert (await client.closed(timeout=10))[0] == 1009
    else:
        assert await client.recv(timeout=10) == {"type": "pong"}


async def test_max_rooms(make_server: MakeServer, connect: Connector, room: str) -> None:
    """§13.6: at CHAT_MAX_ROOMS, a new room takes the place of the one that has been empty the longest (which
    forgets its history); when every room has members, a connection to a new room is closed with 1013."""
    server = make_server({"CHAT_MAX_ROOMS": "2"}, fresh=True)
    epochs = {}
    for name in ("a", "b"):
        client = await connect(server, f"{room}-{name}", "alice")
        await client.say("hi")
        await client.until(lambda f: f["type"] == "ack")
        epochs[name] = client.welcome["payload"]["epoch"]
        await client.close()
    await wait_for_metric(server, "chat_connections", 0)
    await connect(server, f"{room}-c", "carol")  # a goes: empty the longest
    bob = await connect(server, f"{room}-b", "bob", since=1, epoch=epochs["b"])  # b stays: now with a member
    assert bob.welcome["payload"]["resumed"] is True
    with pytest.raises(ConnectionClosed) as refused:  # a new room, and each of the two has a member
        await connect(server, f"{room}-a", "alice", since=1, epoch=epochs["a"])
    assert refused.value.rcvd is not None
    assert (refused.value.rcvd.code, refused.value.rcvd.reason) == (1013, "try again later")
    await bob.close()
    await wait_for_metric(server, "chat_connections", 1)
    alice = await connect(server, f"{room}-a", "alice", since=1, epoch=epochs["a"])  # b goes; a forgot its history
    assert alice.welcome["payload"]["epoch"] != epochs["a"]
    assert (alice.welcome["payload"]["resumed"], alice.welcome["payload"]["seq"]) == (False, 0)
