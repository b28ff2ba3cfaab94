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

from chatcore.backend import BackendUnavailable
from chatcore.backend_redis import channel, reachable
from chatcore.fanout import LocalFanout

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
        self.pubsub = client.pubsub()
        self.subscribed: dict[str, asyncio.Event] = {}  # channel -> set once Redis has confirmed it
        # One (un)subscribe at a time: redis-py's PubSub.connect() is not safe to run concurrently. Two rooms'
        # first sessions arriving together would each open a connection, and the subscriptions sent on the one
        # the listener doesn't read would never be confirmed, nor their messages delivered.
        self.commands = asyncio.Lock()
        self.listener: asyncio.Task[None] | None = None

    async def subscribe(self, session: Session) -> None:
        name = channel(session.room)
        await self.local.subscribe(session)
        confirmed = self.subscribed.get(name)
        if confirmed is None:
            confirmed = self.subscribed[name] = asyncio.Event()
            try:
                async with reachable(), self.commands:  # bounded, also the wait behind the others
                    await self.pubsub.subscribe(name)
            except BaseException:
                del self.subscribed[name]  # the next session of the room tries again
                raise
            if self.listener is None:
                self.listener = asyncio.create_task(self.listen(), name="redis-fanout")
        # Subscribed before the hub takes its snapshot: no message falls between the two (SPEC.md §9).
        async with reachable():
            await confirmed.wait()

    async def unsubscribe(self, session: Session) -> None:
        await self.local.unsubscribe(session)
        name = channel(session.room)
        if session.room not in self.local.rooms and self.subscribed.pop(name, None) is not None:
            try:
                async with reachable(), self.commands:
                    await self.pubsub.unsubscribe(name)
            except BackendUnavailable:
                self.pubsub.channels.pop(name, None)  # or redis-py subscribes to it again when Redis is back
                raise

    async def publish(self, room: str, frame: str, *, seq: int) -> None:
        pass  # the backend's script has published it already, in seq order

    async def announce(self, room: str, user: str, frame: str, topic: str = "presence") -> None:
        async with reachable():
            await self.client.publish(channel(room), f"0 {topic} {user} {frame}")

    async def listen(self) -> None:
        """Read this process's pub/sub connection for ever, and hand each frame to the local sessions."""
        handed = 0  # messages handed over since the writers last ran
        while True:
            try:
                message = await self.pubsub.get_message(timeout=None)
            except redis.RedisError as exc:  # Redis went away: redis-py reconnects and subscribes again
                logger.warning("Redis pub/sub: %s; retrying in %s s", exc, RETRY_DELAY)
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
            room = name[name.index("{") + 1 : name.rindex("}")]
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
        await self.pubsub.aclose()  # type: ignore[no-untyped-call]
