"""The Redis fan-out of chatcore/fanout_redis.py against a real redis-server (on a free port) that dies and comes
back: the listener never stops listening, and a room subscribed meanwhile hears its messages."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, cast

import pytest

from chatcore import redis_client
from chatcore.fanout_redis import RETRY_DELAY, RedisFanout
from chatcore.redis_client import channel
from tests.redis_server import RedisServer

if TYPE_CHECKING:
    from chatcore.session import Session


class Member:
    """Stands in for a Session: a room, and the frames the fan-out hands it."""

    def __init__(self, room: str) -> None:
        self.room = room
        self.frames: list[tuple[int, str]] = []
        self.got = asyncio.Event()

    def send(self, frame: str, seq: int) -> None:
        self.frames.append((seq, frame))
        self.got.set()


class Heard(logging.Handler):
    """Keeps what the ``chat`` logger writes; sets ``event`` at a line containing ``text``."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text, self.event = text, asyncio.Event()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        if self.text in record.getMessage():
            self.event.set()


@pytest.fixture
def pubsub_failures() -> Iterator[Heard]:
    handler = Heard("Redis pub/sub:")
    logging.getLogger("chat").addHandler(handler)
    yield handler
    logging.getLogger("chat").removeHandler(handler)


async def test_a_room_subscribed_while_redis_comes_back(tmp_path: Path, pubsub_failures: Heard) -> None:
    """SPEC.md §17: a room's first session arrives as Redis comes back and is slow to answer (stopped, here), while
    the listener retries: the subscription is confirmed and the room's messages are heard. (redis-py reconnected
    from both tasks at once; the listener died of it, "readuntil() called while another coroutine is already
    waiting", and the process heard nothing more: every later session closed with 1013.)"""
    server = RedisServer(tmp_path)
    server.start()
    client = redis_client.connect(server.url)
    fanout = RedisFanout(client)
    try:
        before = Member("before")
        await fanout.subscribe(cast("Session", before))
        server.kill()
        await asyncio.wait_for(pubsub_failures.event.wait(), 5)  # the listener has noticed
        server.start()
        assert server.process is not None
        server.process.send_signal(signal.SIGSTOP)  # accepts connections (the kernel does), answers nothing
        after = Member("after")
        subscribing = asyncio.create_task(fanout.subscribe(cast("Session", after)))
        await asyncio.sleep(3 * RETRY_DELAY)  # ok-sleep: the listener's retry comes while Redis is stopped
        server.process.send_signal(signal.SIGCONT)
        await asyncio.wait_for(subscribing, 3)
        for n, member in enumerate([after, before], start=1):  # the new room, and the one subscribed again
            await client.publish(channel(member.room), f'{n} {{"type":"chat.message"}}')
            await asyncio.wait_for(member.got.wait(), 3)
            assert member.frames == [(n, '{"type":"chat.message"}')]
        assert [r.getMessage() for r in pubsub_failures.records if r.levelno >= logging.ERROR] == []
    finally:
        try:
            await fanout.aclose()
            await client.aclose()
        finally:
            server.kill()  # also if the listener's failure comes out of aclose()
