"""Channels' consumer loop at a cost a busy room can afford: no task and no database hop per message."""

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable
from typing import Any

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.layers import get_channel_layer

Receive = Callable[[], Awaitable[dict[str, Any]]]


class LeanDispatch:
    """What Channels' ``AsyncConsumer`` does with the messages of a consumer (from the client, through the ASGI
    server, and from its channel, through the channel layer): hand them one at a time to the handler named by their
    type. Channels' way costs, for every message, a new task (``await_many_dispatch`` awaits each next message in a
    task of its own, and ``asyncio.wait`` for either) and a ``sync_to_async`` round trip through one shared thread
    before the handler, to close stale database connections (``aclose_old_connections``). On a room of 50, the two
    took about half of the server's time. Here, each source has one task for the consumer's life, which takes a
    message and dispatches it under a lock shared by both: one message at a time, each source's in order, and a
    message is taken only once the previous one of its source is handled, so the channel layer's capacity still
    bounds what waits. No database hop: a consumer that uses Django's ORM must keep it (02_channels/README.md).

    Mixed in before Channels' consumer class: ``class ChatConsumer(ConsumerChannel, LeanDispatch,
    AsyncWebsocketConsumer)``."""

    channel_layer_alias: str  # Channels'

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Callable[..., Awaitable[None]]) -> None:
        """One task per source: Channels' ``await_many_dispatch`` makes one a message (a speed-up; test_dispatch.py)."""
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        sources = [receive]
        if self.channel_layer is not None:
            self.channel_name = await self.channel_layer.new_channel()
            self.channel_receive = functools.partial(self.channel_layer.receive, self.channel_name)
            sources.append(self.channel_receive)
        self.base_send = send
        with contextlib.suppress(StopConsumer):  # a handler ends the consumer
            await dispatch_all(sources, self.dispatch)

    async def dispatch(self, message: dict[str, Any]) -> None:
        """No database hop: Channels' makes one before every handler (a speed-up, no test; see the class)."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']!r}")
        await handler(message)


async def dispatch_all(sources: list[Receive], dispatch: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
    """Hand every message of every source to ``dispatch``, one at a time, until a handler raises (StopConsumer ends a
    consumer) or we are cancelled."""
    turn = asyncio.Lock()  # one handler at a time, as in Channels; the lock serves waiters in order

    async def pump(source: Receive) -> None:
        while True:
            message = await source()  # no wait when a message is queued already
            async with turn:
                await dispatch(message)

    pumps = [asyncio.create_task(pump(source)) for source in sources]
    try:
        done, _ = await asyncio.wait(pumps, return_when=asyncio.FIRST_EXCEPTION)
        error = done.pop().exception()  # the handler's: StopConsumer, or a bug (a pump only ends by raising)
    finally:
        for task in pumps:
            task.cancel()  # a receive() of the channel layer forgets the channel when cancelled
        await asyncio.wait(pumps)
    # Raised with no reference left here to the tasks, which hold it: the exception, its traceback, this frame
    # and a task would be a cycle, and keep the consumer and all it holds until a full garbage collection.
    del pumps, done, task
    try:
        raise error  # type: ignore[misc]  # not None: the task raised
    finally:
        del error
