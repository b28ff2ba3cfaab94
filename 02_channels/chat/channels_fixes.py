"""What SPEC.md needs and Channels lacks, around the consumer's own channel on the channel layer: a channel that
Redis can't make closes the connection with 1013, and a consumer's channel goes when the consumer ends; and
channels-redis's outages logged in a line each. Speed is elsewhere: chat/dispatch.py and chat/layers.py."""

import logging
from typing import Any

import redis.exceptions as redis
from channels.layers import InMemoryChannelLayer

from chat.layers import PubSubChannelLayer
from chatcore.backend import BackendUnavailable
from chatcore.logs import shorten
from chatcore.protocol import UNAVAILABLE
from chatcore.redis_client import errors_as_unavailable

logger = logging.getLogger("chat")


class ConsumerChannel:
    """The consumer's channel, made and deleted as SPEC.md needs: mixed in first, before the consumer loop
    (``chat.dispatch.LeanDispatch``, or Channels' own) and Channels' consumer class."""

    channel_layer: Any  # Channels', set by the consumer loop
    channel_name: str  # Channels', set once the layer has made the channel

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """1013 when Redis can't make the channel: Channels lets it out (tests/test_17_scale_out.py::test_redis_dies).

        The consumer loop asks the layer for the consumer's channel before the handshake is answered; with Redis
        down, the error leaves the application, and daphne answers HTTP 500 and logs its traceback. Like any
        connection that finds the backend unavailable, this one closes with 1013 right after the handshake (SPEC.md
        §17). Whatever else ends the consumer, ``delete_channel`` runs."""
        try:
            await super().__call__(scope, receive, send)  # type: ignore[misc]  # the consumer loop's
        except (redis.RedisError, BackendUnavailable) as exc:
            if hasattr(self, "channel_name"):
                raise  # not from new_channel(): the connection is under way already
            logger.warning("Closing a connection to %s at once: %s", shorten(scope["path"]), exc)
            await receive()  # websocket.connect
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.close", "code": UNAVAILABLE.code, "reason": UNAVAILABLE.reason})
        finally:
            await self.delete_channel()

    async def delete_channel(self) -> None:
        """Delete the channel, which can outlive its consumer (no test at the suite's size; see the README).

        Channels has no call to delete a consumer's channel: a layer deletes it when the consumer's pending
        ``receive()`` on it is cancelled, as Channels does when the consumer ends. But a group message that arrives
        while ``disconnect`` runs (such as the leave that ``hub.disconnect`` sends to the room) completes that
        ``receive()`` instead, and the channel stays, with what was queued for it: in the in-memory layer for its
        60 s expiry, in channels-redis's pub/sub layer for good, still subscribed in Redis (channels_redis#276)."""
        layer, name = self.channel_layer, getattr(self, "channel_name", None)
        if name is None:
            return
        if isinstance(layer, InMemoryChannelLayer):
            layer.channels.pop(name, None)
        elif isinstance(layer, PubSubChannelLayer):
            try:
                async with errors_as_unavailable():
                    await layer.delete_channel(name)
            except BackendUnavailable as exc:
                logger.warning("Channel %s not unsubscribed: %s", name, exc)


class RedisOutagesWithoutTraceback(logging.Filter):
    """channels-redis logs every failed attempt to reach Redis with a traceback, once a second while Redis is
    down. An outage is expected (SPEC.md §17): one line each is enough."""

    def filter(self, record: logging.LogRecord) -> bool:
        """One line: channels-redis logs a traceback (tests/test_17_scale_out.py::test_redis_dies finds none)."""
        if record.exc_info and isinstance(record.exc_info[1], redis.RedisError | OSError):
            record.msg, record.args = f"{record.getMessage()} {record.exc_info[1]}", None
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True
