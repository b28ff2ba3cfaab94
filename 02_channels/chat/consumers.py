"""The chat WebSocket as a Channels consumer: Channels calls connect, receive and disconnect for the client,
and chat_frame for every frame its room's group sends; chatcore's Session does the rest (SPEC.md §6-§14)."""

import asyncio
import logging
from typing import Any

import redis.exceptions as redis
from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncWebsocketConsumer

from chat.hub import get_hub
from chat.middleware import query_params
from chatcore.handshake import Refusal, check_request
from chatcore.logs import shorten
from chatcore.protocol import BINARY_FRAME, UNAVAILABLE, Close, closed_by_peer
from chatcore.session import Session

logger = logging.getLogger("chat")


class ChatConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]  # Channels has no type hints
    session: Session | None = None  # once accepted
    serving: asyncio.Task[Close] | None = None  # session.run(): the writer, the heartbeat, the leave

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        except redis.RedisError as exc:
            if getattr(self, "channel_name", None) is not None:
                raise  # not from new_channel(): the connection is under way already
            # Channels could not give this connection its channel: Redis is down. Like any connection that finds
            # the backend unavailable, it closes with 1013 right after the handshake (SPEC.md §17).
            logger.warning("Closing a connection to %s at once: Redis: %s", shorten(scope["path"]), exc)
            await receive()  # websocket.connect
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.close", "code": UNAVAILABLE.code, "reason": UNAVAILABLE.reason})

    async def connect(self) -> None:
        room = self.scope["url_route"]["kwargs"]["room"]
        try:
            handshake = check_request(user=self.scope["chat_user"], room=room, query=query_params(self.scope))
        except Refusal as refusal:
            logger.info("Refused /ws/chat/%s: %s", shorten(room), refusal)
            await self.close()  # before accept: daphne answers HTTP 403
            return
        await self.accept()
        self.session = session = await get_hub().connect(handshake, address=self.channel_name)
        self.serving = asyncio.create_task(
            session.run(self.read_frames(session), self.write_frames(session), self.send_close)
        )

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Channels' dispatch, without the ``sync_to_async`` round trip it makes before every handler to close
        stale database connections (``aclose_old_connections``): this consumer never uses the database, and
        that round trip, one per frame and per group message, through one shared thread, costs about half of
        the time spent on a busy room. A consumer that uses the ORM must keep it."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']!r}")
        await handler(message)

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
        """A frame sent to the room's group (chat.hub.GroupFanout): queue it for this client."""
        if self.session is not None and event["skip"] != self.channel_name:
            self.session.send(event["frame"], event["seq"])

    async def read_frames(self, session: Session) -> None:
        """Channels reads the socket itself and calls receive() with each frame: here we only wait for the end."""
        await session.ended

    async def write_frames(self, session: Session) -> None:
        while True:
            await self.send(text_data=await session.next_frame())  # waits while the client is not reading

    async def send_close(self, close: Close) -> None:
        await self.close(close.code, close.reason)
