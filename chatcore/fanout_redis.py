"""Fan-out across processes with Redis pub/sub: a channel per room, one subscriber connection per process.

Committed chat messages are published by the backend's own Lua script (``chatcore.backend_redis``), so every
process receives a room's messages in seq order; presence frames are published here. Pub/sub delivers at most
once: what a process misses while its connection to Redis is down, ``Session`` refills from history
(SPEC.md §7). Delivery to the sessions of this process goes through a ``LocalFanout``, into their queues.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from chatcore.backend import BackendUnavailable
from chatcore.fanout import LocalFanout
from chatcore.redis_client import REDIS_TIMEOUT, channel, errors_as_unavailable, room_of

if TYPE_CHECKING:
    from chatcore.session import Session

logger = logging.getLogger("chat")

# Timeouts
RETRY_DELAY = 0.5  # between attempts to read from a pub/sub connection that failed

# Limits
BURST = 32  # messages the listener hands to the sessions in one turn of the event loop, at most


class RedisFanout:
    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.local = LocalFanout()
        # redis-py's PubSub is not safe to (re)connect from two tasks, and by default it reconnects from whichever
        # task meets an error: its connect() reads the handshake's answers, and a second reader of the connection
        # fails ("readuntil() called while another coroutine is already waiting"; the listener died of it, and
        # the process heard nothing more), or a second socket replaces the first and what was sent on the first
        # is never answered. So redis-py never reopens this connection by itself (no retry): the listener alone
        # does (``listen``), holding ``commands``, and sets ``up`` once it works; (un)subscriptions are sent one at
        # a time, holding ``commands``, on a connection that is up. Before the listener starts, the first
        # subscription connects.
        pool = client.connection_pool
        no_retry = {"retry": Retry(NoBackoff(), 0, supported_errors=()), "retry_on_error": []}
        own = redis.ConnectionPool(pool.connection_class, max_connections=1, **{**pool.connection_kwargs, **no_retry})
        self.pubsub = redis.Redis.from_pool(own).pubsub()
        self.subscribed: dict[str, asyncio.Event] = {}  # channel -> set once Redis has confirmed it
        self.commands = asyncio.Lock()
        self.up = asyncio.Event()
        self.listener: asyncio.Task[None] | None = None

    async def subscribe(self, session: Session) -> None:
        name = channel(session.room)
        await self.local.subscribe(session)
        confirmed = self.subscribed.get(name)
        if confirmed is None:
            confirmed = self.subscribed[name] = asyncio.Event()
            try:
                # Bounded, also the wait for the listener to reconnect, and behind others.
                async with errors_as_unavailable():
                    if self.listener is not None:
                        await self.up.wait()
                    await self.command("SUBSCRIBE", name)
            except BaseException:
                del self.subscribed[name]  # the next session of the room tries again
                raise
            if self.listener is None:
                self.listener = asyncio.create_task(self.listen(), name="redis-fanout")
        # Subscribed before the hub takes its snapshot: no message falls between the two (SPEC.md §9).
        async with errors_as_unavailable():
            await confirmed.wait()

    async def unsubscribe(self, session: Session) -> None:
        await self.local.unsubscribe(session)
        name = channel(session.room)
        if session.room not in self.local.rooms and self.subscribed.pop(name, None) is not None:
            async with errors_as_unavailable():  # if it fails, the listener's next reconnection leaves the channel out
                await self.command("UNSUBSCRIBE", name)

    async def command(self, command: str, name: str) -> None:
        """Send (UN)SUBSCRIBE, one at a time, on a connection that is up; while it is down, a SUBSCRIBE raises
        BackendUnavailable, and an UNSUBSCRIBE is done already (the listener's reconnection leaves the channel out)."""
        async with self.commands:
            if self.listener is not None and not self.working():
                if command == "SUBSCRIBE":
                    raise BackendUnavailable("Redis pub/sub: the connection is down; the listener reconnects")
            elif command == "SUBSCRIBE":
                await self.pubsub.subscribe(name)
                self.up.set()  # the first one opened the connection, or it was up
            else:
                await self.pubsub.unsubscribe(name)

    def working(self) -> bool:
        """Whether the pub/sub connection is up: the listener reconnected it, and redis-py has not closed it since
        (it does when a command fails to send)."""
        connection = self.pubsub.connection
        return self.up.is_set() and connection is not None and connection.is_connected

    async def reconnect(self) -> None:
        """Reopen the pub/sub connection and subscribe again to the channels of this process's rooms (redis-py
        does, on connect), within REDIS_TIMEOUT: Redis may accept the connection and not answer."""
        async with self.commands, asyncio.timeout(REDIS_TIMEOUT):
            for name in [name for name in self.pubsub.channels if str(name) not in self.subscribed]:
                del self.pubsub.channels[name]  # unsubscribed while the connection was down, or never confirmed
            if self.pubsub.connection is not None:
                await self.pubsub.connection.disconnect()  # in whatever state the failure left it
            await self.pubsub.connect()  # type: ignore[no-untyped-call]
            self.up.set()

    async def publish(self, room: str, frame: str, *, seq: int) -> None:
        pass  # the backend's script has published it already, in seq order

    async def announce(self, room: str, user: str, frame: str, topic: str = "presence") -> None:
        async with errors_as_unavailable():
            await self.client.publish(channel(room), f"0 {topic} {user} {frame}")

    async def listen(self) -> None:
        """Read this process's pub/sub connection for ever, and hand each frame to the local sessions."""
        handed = 0  # messages handed over since the writers last ran
        while True:
            try:
                if not self.working():
                    await self.reconnect()
                message = await self.pubsub.get_message(timeout=None)
            except Exception as exc:  # Redis went away, or redis-py failed: reconnect, and never stop listening
                self.up.clear()
                if isinstance(exc, redis.RedisError | TimeoutError):
                    why = str(exc) or f"Redis did not answer within {REDIS_TIMEOUT:g} s"
                    logger.warning("Redis pub/sub: %s; retrying in %s s", why, RETRY_DELAY)
                else:  # a bug, here or in redis-py: the listener carries on, and says so
                    logger.exception("Redis pub/sub: the listener failed; retrying in %s s", RETRY_DELAY)
                await asyncio.sleep(RETRY_DELAY)
                continue
            if message is not None:
                try:
                    self.dispatch(message)
                except Exception:  # a bug, or a malformed message: log it, keep listening for the others
                    logger.exception("Redis pub/sub: could not dispatch %r", message)
            # Then, every BURST messages, let the writers run: redis-py hands over whatever it has read without
            # waiting, and a burst of messages would fill queues faster than any client could be read to. Not
            # after each one: the frames a session gets in one turn go out in one system call (Session.send),
            # and one message a turn made one per frame, which cost a busy room two thirds of its time.
            handed += 1
            if handed == BURST:
                handed = 0
                await asyncio.sleep(0)

    def dispatch(self, message: dict[str, Any]) -> None:
        name = str(message["channel"])
        if message["type"] == "subscribe":
            event = self.subscribed.get(name)
            if event is not None:
                event.set()
        elif message["type"] == "message":
            seq, frame = str(message["data"]).split(" ", 1)
            room = room_of(name)
            if seq != "0":
                for session in self.local.rooms.get(room, ()):
                    session.send(frame, int(seq))
            else:  # a presence change: "<topic> <user> <frame>", batched per room as in one process
                topic, user, frame = frame.split(" ", 2)
                self.local.presence.add(room, user, frame, topic)

    async def aclose(self) -> None:
        if self.listener is not None:
            self.listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.listener
        async with self.commands:  # after any (un)subscription, which might open the connection
            await self.pubsub.aclose()  # type: ignore[no-untyped-call]
            await self.pubsub.connection_pool.disconnect()
