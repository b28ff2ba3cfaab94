"""The process's hub (chatcore), fanning out through Channels groups: one group per room."""

import asyncio
import functools
import logging

from channels.layers import BaseChannelLayer, get_channel_layer
from django.conf import settings

from chat.channels_fixes import RedisOutagesWithoutTraceback
from chat.layers import PubSubChannelLayer
from chatcore.backend import BackendUnavailable
from chatcore.hub import Hub
from chatcore.logs import setup_logging
from chatcore.presence import Announcement, Batcher
from chatcore.redis_client import REDIS_TIMEOUT, errors_as_unavailable
from chatcore.session import Session

logger = logging.getLogger("chat")


def group_name(room: str) -> str:
    return f"chat.{room}"  # room names (SPEC.md §1) are valid in group names


class GroupFanout:
    """chatcore's ``Fanout`` on a channel layer: a consumer's channel joins its room's group, and a frame for the
    room is one ``group_send``, which Channels copies into every member's channel. The consumer's ``chat_frame``
    handler queues it for its client.

    Presence changes are batched before they are sent (``presence.Batcher``): Channels dispatches each group
    message to each member separately, at a cost per message, so a crowd of n arriving one by one would cost n²
    dispatches. Batched, a crowd costs each member one group message per interval."""

    def __init__(self, layer: BaseChannelLayer) -> None:
        self.layer = layer
        self.within = REDIS_TIMEOUT if isinstance(layer, PubSubChannelLayer) else None  # no Redis, no deadline
        self.presence = Batcher(self.send_presence)
        self.sending: set[asyncio.Task[None]] = set()

    async def subscribe(self, session: Session) -> None:
        # channels-redis raises redis-py's errors when Redis is down. No deadline: a SUBSCRIBE waits for no answer,
        # but it may wait its turn behind the layer's lock for seconds, after each connection's own subscription,
        # when a crowd arrives at once (chat/layers.py); the hub's next call to Redis has the deadline.
        async with errors_as_unavailable(within=None):
            await self.layer.group_add(group_name(session.room), session.address)  # also renews the membership

    async def unsubscribe(self, session: Session) -> None:
        async with errors_as_unavailable(self.within):
            await self.layer.group_discard(group_name(session.room), session.address)

    async def publish(self, room: str, frame: str, *, seq: int) -> None:
        async with errors_as_unavailable(self.within):
            await self.layer.group_send(group_name(room), {"type": "chat.frame", "frame": frame, "seq": seq})

    async def announce(self, room: str, user: str, frame: str, topic: str = "presence") -> None:
        self.presence.add(room, user, frame, topic)

    def send_presence(self, room: str, announcement: Announcement) -> None:
        """Send a batch of presence changes to the room's group: the consumers' ``chat_presence`` queue them."""
        event: dict[str, object] = {"type": "chat.presence", "changes": announcement.changes}
        task = asyncio.create_task(self.send_group(room, event))  # a room's batches are 0.1 s apart: in order
        self.sending.add(task)
        task.add_done_callback(self.sending.discard)

    async def send_group(self, room: str, event: dict[str, object]) -> None:
        try:
            async with errors_as_unavailable(self.within):
                await self.layer.group_send(group_name(room), event)
        except BackendUnavailable as exc:
            logger.warning("Presence in %r not announced: %s", room, exc)

    async def aclose(self) -> None:
        pass  # the layer is Channels', closed by Channels


def setup_chat_logging() -> None:
    """chatcore's logging set-up, plus ``RedisOutagesWithoutTraceback`` (chat/channels_fixes.py) on channels-redis's."""
    setup_logging(settings.CHAT)
    for name in ("channels_redis.pubsub", "channels_redis.core"):  # a logger's filters see its own records only
        logging.getLogger(name).addFilter(RedisOutagesWithoutTraceback())


@functools.cache
def get_hub() -> Hub:
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError('The chat needs a channel layer: set CHANNEL_LAYERS["default"] in the settings.')
    return Hub(settings.CHAT, GroupFanout(layer))
