"""The chat WebSocket as a Channels consumer: Channels calls connect, receive and disconnect for the client,
and chat_frame for every frame its room's group sends; chatcore's Session does the rest (SPEC.md §6-§14)."""

import asyncio
from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer

from chat.channels_fixes import ConsumerChannel
from chat.dispatch import LeanDispatch
from chat.hub import get_hub
from chat.middleware import query_params
from chatcore.handshake import Refusal, check_request, log_refusal
from chatcore.presence import Announcement
from chatcore.protocol import BINARY_FRAME, Close, closed_by_peer
from chatcore.session import Session, find_write_now


class ChatConsumer(ConsumerChannel, LeanDispatch, AsyncWebsocketConsumer):  # type: ignore[misc]  # Channels: no hints
    """Channels' WebSocket consumer, whose ``__call__`` is ConsumerChannel's (chat/channels_fixes.py) around
    LeanDispatch's consumer loop (chat/dispatch.py)."""

    session: Session | None = None  # once accepted
    serving: asyncio.Task[Close] | None = None  # session.run(): the writer, the heartbeat, the leave

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
                find_write_now(self.scope),  # daphne's send without the await (daphne_fixes.py)
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
