"""Chapter 2's Redis channel layer (``chat.layers``) against a real redis-server, through a loopback relay that
can cut the connections and slow the answers down, as a Redis restart on a busy network does."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from chat.layers import PubSubChannelLayer
from chatcore.redis_client import connection_options
from tests.harness import free_port
from tests.redis_server import RedisServer

DELAY = 0.25  # seconds the relay holds every chunk, each way, as Redis comes back: a HELLO takes twice that
BACK_OFF = 1.0  # seconds channels-redis's receive task sleeps after it logged a failure (channels_redis.pubsub)


class Relay:
    """A TCP relay on a free loopback port to ``port``, which delivers each chunk ``delay`` seconds late (a setting
    that can change at any time), in order; ``cut()`` closes every connection and refuses new ones until
    ``restore()``."""

    def __init__(self, port: int) -> None:
        self.upstream, self.delay, self.port = port, 0.0, free_port()
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.pumps: set[asyncio.Task[None]] = set()

    async def restore(self) -> None:
        self.server = await asyncio.start_server(self.relay, "127.0.0.1", self.port, reuse_address=True)

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.transport.abort()
        await self.server.wait_closed()

    async def relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
        self.writers |= {writer, up_writer}
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            pump = asyncio.create_task(self.pump(source, sink))
            self.pumps.add(pump)
            pump.add_done_callback(self.pumps.discard)

    async def pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        """Copy ``source`` to ``sink``, each chunk ``delay`` seconds after it arrived; close both at the end."""
        chunks: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, chunk = await chunks.get()
                await asyncio.sleep(max(0.0, due - time.monotonic()))  # ok-sleep: the relay's latency
                if not chunk:
                    break
                sink.write(chunk)

        delivering = asyncio.create_task(deliver())
        try:
            while chunk := await source.read(65536):
                chunks.put_nowait((time.monotonic() + self.delay, chunk))
            chunks.put_nowait((time.monotonic() + self.delay, b""))
            await delivering
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            delivering.cancel()
            sink.transport.abort()
            self.writers.discard(sink)

    async def close(self) -> None:
        await self.cut()
        for pump in list(self.pumps):
            pump.cancel()
        await asyncio.gather(*self.pumps, return_exceptions=True)


class Records(logging.Handler):
    """The records of channels-redis's pub/sub logger; ``failed`` is set at each of the receive task's failures."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []
        self.failed = asyncio.Event()
        self.failed_at = 0.0

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        if record.getMessage().startswith("Unexpected exception in receive task"):
            self.failed_at = time.monotonic()
            self.failed.set()

    def errors(self) -> list[str]:
        return [f"{record.getMessage()} {record.exc_info[1]!r}" for record in self.records if record.exc_info]


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.kill()


@pytest.fixture
def records() -> Iterator[Records]:
    logger = logging.getLogger("channels_redis.pubsub")
    handler = Records()
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


@pytest.fixture
async def relay(redis_server: RedisServer) -> AsyncIterator[Relay]:
    relay = Relay(redis_server.port)
    await relay.restore()
    yield relay
    await relay.close()


@pytest.mark.timeout(30)
async def test_subscribing_while_redis_comes_back(relay: Relay, records: Records) -> None:
    """§17: Redis comes back while the layer's receive task reconnects and a consumer subscribes: the pub/sub
    connection is reopened once, no read is made twice at the same time, and both channels hear what is sent."""
    layer = PubSubChannelLayer(hosts=[connection_options(f"redis://127.0.0.1:{relay.port}/0")], prefix="test-layer")
    try:
        first = await layer.new_channel()  # starts the receive task: it polls the pub/sub connection
        await relay.cut()
        async with asyncio.timeout(10):
            await records.failed.wait()  # the receive task failed to reconnect: it sleeps BACK_OFF seconds
        relay.delay = DELAY
        await relay.restore()
        # Aim the subscription's reconnection (its HELLO is in flight for twice DELAY) at the receive task's wake-up.
        await asyncio.sleep(max(0.0, records.failed_at + BACK_OFF - DELAY - time.monotonic()))  # ok-sleep: aiming
        second = await asyncio.wait_for(layer.new_channel(), 5)
        relay.delay = 0.0
        for channel in (first, second):
            await layer.send(channel, {"type": "hello", "to": channel})
            assert await asyncio.wait_for(layer.receive(channel), 5) == {"type": "hello", "to": channel}
        assert [error for error in records.errors() if "ConnectionError" not in error] == []
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(layer.flush(), 5)
