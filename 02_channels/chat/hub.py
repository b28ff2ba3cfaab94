"""The process's hub (chatcore), fanning out through Channels groups: one group per room."""

import functools

from channels.layers import BaseChannelLayer, get_channel_layer
from django.conf import settings

from chatcore.session import Hub, Session


def group_name(room: str) -> str:
    return f"chat.{room}"  # room names (SPEC.md §1) are valid in group names


class GroupFanout:
    """chatcore's ``Fanout`` on a channel layer: a consumer's channel joins its room's group, and a frame for the
    room is one ``group_send``, which Channels copies into every member's channel. The consumer's ``chat_frame``
    handler queues it for its client."""

    def __init__(self, layer: BaseChannelLayer) -> None:
        self.layer = layer

    async def subscribe(self, session: Session) -> None:
        await self.layer.group_add(group_name(session.room), session.address)  # also renews the membership

    async def unsubscribe(self, session: Session) -> None:
        await self.layer.group_discard(group_name(session.room), session.address)

    async def publish(self, room: str, frame: str, *, seq: int = 0, skip: Session | None = None) -> None:
        event = {"type": "chat.frame", "frame": frame, "seq": seq, "skip": skip.address if skip else ""}
        await self.layer.group_send(group_name(room), event)


@functools.cache
def get_hub() -> Hub:
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError('The chat needs a channel layer: set CHANNEL_LAYERS["default"] in the settings.')
    return Hub(settings.CHAT, fanout=GroupFanout(layer))
