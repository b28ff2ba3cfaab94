"""Chapter 2's consumer loop (``chat.dispatch``) and in-memory channel layer (``chat.layers``): Channels' guarantees,
kept at a lower cost."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.exceptions import StopConsumer

from chat.dispatch import dispatch_all
from chat.layers import MemoryChannelLayer

Message = dict[str, Any]


def source(queue: asyncio.Queue[Message]) -> Any:
    return queue.get


async def test_one_message_at_a_time_each_source_in_order() -> None:
    """Messages of both sources are handled one at a time (a handler that awaits is not overlapped) and each
    source's in its order; a handler's StopConsumer ends the loop cleanly."""
    client: asyncio.Queue[Message] = asyncio.Queue()
    channel: asyncio.Queue[Message] = asyncio.Queue()
    for n in range(20):
        client.put_nowait({"type": "client", "n": n})
        channel.put_nowait({"type": "channel", "n": n})
    handled: list[tuple[str, int]] = []
    running = 0

    async def dispatch(message: Message) -> None:
        nonlocal running
        running += 1
        assert running == 1, "two handlers at once"
        await asyncio.sleep(0)  # ok-sleep: a handler that yields to the event loop mid-way
        running -= 1
        handled.append((message["type"], message["n"]))
        if len(handled) == 40:
            raise StopConsumer

    async with asyncio.timeout(5):
        with pytest.raises(StopConsumer):
            await dispatch_all([source(client), source(channel)], dispatch)
    for kind in ("client", "channel"):
        assert [n for k, n in handled if k == kind] == list(range(20))


async def test_a_message_is_taken_once_the_previous_one_is_handled() -> None:
    """While a handler runs, its source's next message stays in the source (where the layer's capacity bounds it)."""
    channel: asyncio.Queue[Message] = asyncio.Queue()
    channel.put_nowait({"n": 1})
    channel.put_nowait({"n": 2})
    release = asyncio.Event()
    started = asyncio.Event()

    async def dispatch(message: Message) -> None:
        started.set()
        await release.wait()
        raise StopConsumer

    async with asyncio.timeout(5):
        loop = asyncio.create_task(dispatch_all([source(channel)], dispatch))
        await started.wait()
        assert channel.qsize() == 1
        release.set()
        with pytest.raises(StopConsumer):
            await loop


async def test_a_failing_handler_ends_the_loop_and_its_receives() -> None:
    """A handler's error propagates, and the sources' pending receives are cancelled (the layer forgets the
    channel)."""
    client: asyncio.Queue[Message] = asyncio.Queue()
    layer = MemoryChannelLayer()
    name = await layer.new_channel()

    async def dispatch(message: Message) -> None:
        raise ValueError("a bug")

    receiving = asyncio.Event()

    async def channel_receive() -> Message:
        receiving.set()
        return await layer.receive(name)

    async with asyncio.timeout(5):
        loop = asyncio.create_task(dispatch_all([source(client), channel_receive], dispatch))
        await receiving.wait()
        assert name in layer.channels  # its receive is pending
        client.put_nowait({"type": "websocket.receive"})
        with pytest.raises(ValueError, match="a bug"):
            await loop
    assert name not in layer.channels


async def test_group_send_reaches_every_member_up_to_capacity() -> None:
    """Every member of the group gets its own copy of each message; past capacity, a member's messages are dropped
    (chatcore's sessions refill them from history), as with Channels' layer."""
    layer = MemoryChannelLayer(capacity=2)
    alice, bob = await layer.new_channel(), await layer.new_channel()
    for name in (alice, bob):
        await layer.group_add("chat.lobby", name)
    for n in range(3):
        await layer.group_send("chat.lobby", {"type": "chat.frame", "seq": n})
    async with asyncio.timeout(5):
        for name in (alice, bob):
            assert [await layer.receive(name) for _ in range(2)] == [{"type": "chat.frame", "seq": n} for n in (0, 1)]
    first, second = layer.channels[alice], layer.channels[bob]
    assert first is not second and first.empty()


async def test_expired_messages_leave_and_so_does_their_channel() -> None:
    """A message older than the layer's expiry is dropped, and its channel leaves every group, as in Channels."""
    layer = MemoryChannelLayer(expiry=-1)
    name = await layer.new_channel()
    await layer.group_add("chat.lobby", name)
    await layer.group_send("chat.lobby", {"type": "chat.frame"})
    layer.cleaned = 0.0  # the next look is due
    layer._clean_expired()
    assert name not in layer.channels
    assert name not in layer.groups.get("chat.lobby", {})
