"""The chat WebSocket as a Channels consumer: Channels calls connect, receive and disconnect for the client,
and chat_frame for every frame its room's group sends; chatcore's Session does the rest (SPEC.md §6-§14)."""

import asyncio
import logging
from typing import Any

import redis.exceptions as redis
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import InMemoryChannelLayer

from chat.dispatch import LeanDispatch
from chat.hub import get_hub
from chat.layers import PubSubChannelLayer
from chat.middleware import query_params
from chatcore.backend import BackendUnavailable
from chatcore.handshake import Refusal, check_request, log_refusal
from chatcore.logs import shorten
from chatcore.presence import Announcement
from chatcore.protocol import BINARY_FRAME, UNAVAILABLE, Close, closed_by_peer
from chatcore.redis_client import errors_as_unavailable
from chatcore.session import Session, find_write_now

logger = logging.getLogger("chat")


class ChatConsumer(LeanDispatch, AsyncWebsocketConsumer):  # type: ignore[misc]  # Channels has no type hints
    session: Session | None = None  # once accepted
    serving: asyncio.Task[Close] | None = None  # session.run(): the writer, the heartbeat, the leave

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        except (redis.RedisError, BackendUnavailable) as exc:
            if getattr(self, "channel_name", None) is not None:
                raise  # not from new_channel(): the connection is under way already
            # Channels could not give this connection its channel: Redis is down. Like any connection that finds
            # the backend unavailable, it closes with 1013 right after the handshake (SPEC.md §17).
            logger.warning("Closing a connection to %s at once: %s", shorten(scope["path"]), exc)
            await receive()  # websocket.connect
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.close", "code": UNAVAILABLE.code, "reason": UNAVAILABLE.reason})
        finally:
            await self.delete_channel()

    async def delete_channel(self) -> None:
        """Channels has no call to delete a consumer's channel: a layer deletes it when the consumer's pending
        ``receive()`` on it is cancelled, as Channels does when the consumer ends. But a group message that
        arrives while ``disconnect`` runs (such as the leave that ``hub.disconnect`` sends to the room) completes
        that ``receive()`` instead, and the channel stays, with what was queued for it: in the in-memory layer for
        its 60 s expiry, in channels-redis's pub/sub layer for good, still subscribed in Redis."""
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

    async def connect(self) -> None:
        room = self.scope["url_route"]["kwargs"]["room"]
        try:
            handshake = check_request(user=self.scope["chat_user"], room=room, query=query_params(self.scope))
        except Refusal as refusal:
            log_refusal(self.scope["path"], refusal)
            await self.close()  # before accept: daphne answers HTTP 403
            return
        await self.accept()
        self.session = session = await get_hub().connect(handshake, address=self.channel_name)
        self.serving = asyncio.create_task(
            session.run(
                self.read_frames(session),
                self.write_frames(session),
                self.send_close,
                find_write_now(self.scope),  # daphne's send without the await (server.py)
            )
        )

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.session is None or self.session.ended.done():
            return  # a frame after the one that ended the connection: like chapter 1's reader, stop reading
        if text_data is not None:
            await self.session.receive(text_data)
        else:
            self.session.close(BINARY_FRAME)

    async def disconnect(self, code: int) -> None:
        if self.session is not None and self.serving is not None:
            self.session.close(closed_by_peer(code))
            await self.serving  # the leave is announced before this consumer ends

    async def chat_frame(self, event: dict[str, Any]) -> None:
        """A chat message sent to the room's group (chat.hub.GroupFanout): queue it for this client."""
        if self.session is not None:
            self.session.send(event["frame"], event["seq"])

    async def chat_presence(self, event: dict[str, Any]) -> None:
        """Presence changes sent to the room's group: queue them for this client."""
        if self.session is not None:
            self.session.announce(Announcement(tuple((user, frame) for user, frame in event["changes"])))

    async def read_frames(self, session: Session) -> None:
        """Channels reads the socket itself and calls receive() with each frame: here we only wait for the end."""
        await session.ended

    async def write_frames(self, session: Session) -> None:
        while True:
            await self.send(text_data=await session.next_frame())  # waits while the client is not reading

    async def send_close(self, close: Close) -> None:
        await self.close(close.code, close.reason)
