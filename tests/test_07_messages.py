"""SPEC.md §7: chat messages, their seq and order, and the ack."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.client import Client, Frame
from tests.conftest import Connector, MakeServer
from tests.harness import FAST, Server

pytestmark = pytest.mark.cluster  # these need several clients: also run on two processes (SPEC.md §17)


async def test_message_reaches_every_member(server: Server, connect: Connector, room: str) -> None:
    """§7: a message goes to every member, sender included, with seq, id, user (from the token), text, ts."""
    alice = await connect(server, room, "alice")
    bob = await connect(server, room, "bob")
    before = int(time.time() * 1000)
    msg_id = await alice.say("hello, bob")
    received = await bob.expect("chat.message")
    assert set(received) == {"type", "seq", "payload"}
    assert received["seq"] == 1
    assert set(received["payload"]) == {"id", "user", "text", "ts"}
    assert received["payload"]["id"] == msg_id
    assert received["payload"]["user"] == "alice"
    assert received["payload"]["text"] == "hello, bob"
    assert before - 60_000 <= received["payload"]["ts"] <= int(time.time() * 1000) + 60_000
    own = await alice.until(lambda f: f["type"] == "chat.message")
    assert own[-1] == received


async def test_ack_to_sender_only(server: Server, connect: Connector, room: str) -> None:
    """§7: the sender alone gets {"type": "ack", "id", "seq"} once the message is committed."""
    alice = await connect(server, room, "alice")
    bob = await connect(server, room, "bob")
    msg_id = await alice.say("one")
    frames = await alice.until(lambda f: f["type"] == "ack")
    assert frames[-1] == {"type": "ack", "id": msg_id, "seq": 1}
    assert [f["type"] for f in await bob.settled()] == ["chat.message"]


async def test_text_round_trips_exactly(server: Server, connect: Connector, room: str) -> None:
    """§7: the text arrives exactly as sent: any Unicode, newlines, 1 and 2000 characters."""
    alice = await connect(server, room, "alice")
    texts = ["x", "z" * 2000, 'línea 1\nlínea 2\t🙂 مرحبا \u200b "quoted" \\ </script>', "🙂" * 2000]
    for text in texts:
        await alice.say(text)
    got = [f["payload"]["text"] for f in await collect_messages(alice, 4)]
    assert got == texts


async def collect_messages(client: Client, count: int) -> list[Frame]:
    frames = await client.until(lambda f: f["type"] == "chat.message" and f["seq"] >= count, timeout=20)
    return [f for f in frames if f["type"] == "chat.message"]


async def test_same_order_for_everyone(make_server: MakeServer, connect: Connector, room: str) -> None:
    """§7: with 4 members sending at once, seq runs 1..N without gaps and every member sees the same order."""
    server = make_server(FAST)
    clients = [await connect(server, room, f"user{i}") for i in range(4)]
    per_client = 25
    sent: dict[str, list[str]] = {}

    async def send_all(client: Client) -> None:
        sent[client.user] = [await client.say(f"{client.user} #{n}") for n in range(per_client)]

    total = per_client * len(clients)
    sending = asyncio.gather(*[send_all(c) for c in clients])
    results = await asyncio.gather(*[collect_messages(c, total) for c in clients])
    await sending
    views = [[(f["seq"], f["payload"]["id"]) for f in frames] for frames in results]
    assert [seq for seq, _ in views[0]] == list(range(1, total + 1))
    for view in views[1:]:
        assert view == views[0]
    order = [msg_id for _, msg_id in views[0]]
    for user, ids in sent.items():
        assert [msg_id for msg_id in order if msg_id in set(ids)] == ids, f"{user}'s messages out of sending order"


async def test_acks_match_broadcast_seq(make_server: MakeServer, connect: Connector, room: str) -> None:
    """§7: each ack carries the seq its message was broadcast with."""
    server = make_server(FAST)
    alice = await connect(server, room, "alice")
    ids = [await alice.say(f"m{n}") for n in range(10)]
    last: set[str] = set()

    def both_for_last(frame: Frame) -> bool:
        if frame.get("id", frame.get("payload", {}).get("id")) == ids[-1]:
            last.add(frame["type"])
        return last == {"ack", "chat.message"}

    frames = await alice.until(both_for_last)
    acks = {f["id"]: f["seq"] for f in frames if f["type"] == "ack"}
    broadcast = {f["payload"]["id"]: f["seq"] for f in frames if f["type"] == "chat.message"}
    assert acks == broadcast
    assert sorted(acks.values()) == list(range(1, 11))
