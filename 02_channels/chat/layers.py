"""Channels' two layers, at a cost per message that a busy room can afford: the in-memory layer without its scans,
channels-redis's pub/sub layer without waiting behind its lock for what needs no lock; and a way to delete a
consumer's channel."""

import asyncio
import collections
import contextlib
import time
from typing import Any

import redis.asyncio as redis
from channels.layers import InMemoryChannelLayer
from channels_redis.pubsub import RedisPubSubChannelLayer, RedisSingleShardConnection
from django.conf import settings

from chatcore.redis_client import connect, errors_as_unavailable


class MemoryChannelLayer(InMemoryChannelLayer):  # type: ignore[misc]
    """Channels' ``InMemoryChannelLayer``, whose ``receive`` and ``group_send`` look at every channel and group of the
    process to expire old messages (a scan per message and per member: a room of 50 spent a sixth of its time
    there), and whose ``group_send`` makes a task and a deep copy per member, and a new queue per member whenever
    its queue had been emptied. Here: the same expiry, looked at once a second; a ``group_send`` that puts a
    shallow copy straight into each member's queue (the chat's messages hold strings, numbers and tuples, which no
    handler changes); a channel's queue kept while its consumer waits on it."""

    cleaned = 0.0  # time.monotonic() of the last look for expired messages and memberships

    def _clean_expired(self) -> None:
        """Look for expired messages once a second: Channels looks on every receive and send (a speed-up, no test)."""
        now = time.monotonic()
        if now - self.cleaned >= 1:
            self.cleaned = now
            super()._clean_expired()

    def queue(self, channel: str) -> asyncio.Queue[tuple[float, dict[str, Any]]]:
        queue: asyncio.Queue[tuple[float, dict[str, Any]]] | None = self.channels.get(channel)
        if queue is None:
            queue = self.channels[channel] = asyncio.Queue(maxsize=self.get_capacity(channel))
        return queue

    async def receive(self, channel: str) -> dict[str, Any]:
        """Keep the queue while the consumer waits: Channels drops it whenever it is empty (a speed-up, no test)."""
        self.require_valid_channel_name(channel)
        self._clean_expired()
        queue = self.queue(channel)
        try:
            _, message = await queue.get()
        except asyncio.CancelledError:  # the consumer has ended (Channels cancels its receive): forget its channel
            if queue.empty():
                self.channels.pop(channel, None)
            raise
        return message

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        """A shallow copy into each member's queue: Channels makes a task and a deep copy (a speed-up, no test)."""
        self.require_valid_group_name(group)
        self._clean_expired()
        expires = time.time() + self.expiry
        for channel in self.groups.get(group, ()):
            with contextlib.suppress(asyncio.QueueFull):  # as Channels: dropped past `capacity` (settings.py)
                self.queue(channel).put_nowait((expires, dict(message)))


class PubSubChannelLayer(RedisPubSubChannelLayer):  # type: ignore[misc]  # channels-redis has no type hints
    """channels-redis's ``RedisPubSubChannelLayer`` sends everything a process sends to Redis (each ``group_send``,
    ``group_add``, ``group_discard``, each consumer's subscription to its own channel) one at a time, behind one
    lock per Redis host. When a thousand clients sent at once, or joined a room at once, the last ones waited more
    than 5 s for their turn, and were closed with 1013 while Redis was fine. Two of those calls need no lock:

    - ``group_send`` is a ``PUBLISH``, which needs neither the lock nor the layer's pub/sub connection: here it goes
      on chatcore's pool of connections (50, a command waits for a free one: ``chatcore.redis_client.connect``),
      concurrently. Messages sent together may reach Redis crossed, as two processes' do anyway: chatcore's
      sessions put them back in order (SPEC.md §7).
    - ``group_add`` to a group this process is subscribed to already only has to add the channel to the group's
      local set: the layer takes the lock anyway, to find out that there is nothing to send.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.publisher: redis.Redis | None = None
        self.changing: collections.Counter[str] = collections.Counter()  # group channels being (un)subscribed

    def _get_layer(self) -> Any:
        """The layer's state for this event loop, its shards reading under their lock (``Shard``, test_layers.py)."""
        layer = super()._get_layer()
        if not all(isinstance(shard, Shard) for shard in layer._shards):  # just created: nothing connected yet
            layer._shards = [Shard(shard.host, layer) for shard in layer._shards]
        return layer

    async def new_channel(self, prefix: str = "specific.") -> str:
        """Within Redis's deadline: channels-redis's has none (no test at the suite's size: test_redis_stalls passes).

        Its SUBSCRIBE waits for no answer, but it waits behind the layer's lock, and for a reconnection, which does
        (``chatcore.redis_client.errors_as_unavailable``)."""
        async with errors_as_unavailable():
            channel: str = await self._get_layer().new_channel(prefix)
        return channel

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        """PUBLISH on chatcore's pool: channels-redis queues it behind its lock (make stress: test_burst_on_redis)."""
        if self.publisher is None:
            self.publisher = connect(settings.CHAT.redis_url)
        channel = self._get_layer()._get_group_channel_name(group)  # the name the layer subscribes to
        await self.publisher.publish(channel, self.serialize(message))

    async def group_add(self, group: str, channel: str) -> None:
        """No lock when subscribed already: channels-redis takes it (at make stress's size: test_room_fills_at_once)."""
        layer = self._get_layer()
        name = layer._get_group_channel_name(group)
        subscribed = name in layer._get_shard(name)._subscribed_to and not self.changing[name]
        if subscribed and channel in layer.channels:
            layer.groups.setdefault(name, set()).add(channel)
            return
        await self.changing_subscription(name, layer.group_add(group, channel))

    async def group_discard(self, group: str, channel: str) -> None:
        """channels-redis's, counted in ``changing``, so that no ``group_add`` takes its shortcut meanwhile."""
        layer = self._get_layer()
        await self.changing_subscription(layer._get_group_channel_name(group), layer.group_discard(group, channel))

    async def changing_subscription(self, name: str, change: Any) -> None:
        """Await the layer's own group_add or group_discard: while it runs, Redis's subscription may not be what
        the layer's books say, so no group_add takes the shortcut."""
        self.changing[name] += 1
        try:
            await change
        finally:
            self.changing[name] -= 1
            if not self.changing[name]:
                del self.changing[name]

    async def delete_channel(self, channel: str) -> None:
        """Forget a consumer's channel and unsubscribe from it, as the layer does when the consumer's pending
        ``receive()`` is cancelled (see ``ConsumerChannel.delete_channel`` in chat/channels_fixes.py for when that
        doesn't happen)."""
        layer = self._get_layer()
        if layer.channels.pop(channel, None) is not None:
            await layer._get_shard(channel).unsubscribe(channel)


class Shard(RedisSingleShardConnection):  # type: ignore[misc]
    """channels-redis's connection to one Redis, whose receive task reads under the shard's lock, as SUBSCRIBE
    and UNSUBSCRIBE do. Without it, when Redis came back after dying, the receive task and a consumer's SUBSCRIBE
    both reconnected the pub/sub connection at once, both read its HELLO answer, and the receive task logged
    "readuntil() called while another coroutine is already waiting for incoming data". A subscription now waits for
    the receive task's current poll (0.1 s at most) and goes first after it: the lock serves waiters in turn."""

    def _ensure_redis(self) -> None:
        """Read under the lock: channels-redis's receive task reads without it (02_channels/test_layers.py)."""
        fresh = self._redis is None
        super()._ensure_redis()
        if fresh:
            get_message = self._pubsub.get_message

            async def get_message_locked(**kwargs: Any) -> Any:
                async with self._lock:
                    return await get_message(**kwargs)

            self._pubsub.get_message = get_message_locked
