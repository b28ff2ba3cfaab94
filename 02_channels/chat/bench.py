"""Chapter 2's benchmark baselines (CHAT_BENCH_ENDPOINTS=1, SPEC.md §18): Channels alone, without the protocol."""

from __future__ import annotations

from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer
from django.urls import path, re_path


class EchoConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]  # Channels has no type hints
    """``/ws/echo``: every text frame back."""

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is None:
            await self.close(1003)
        else:
            await self.send(text_data=text_data)


class BroadcastConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]
    """``/ws/bench/{room}``: every text frame to everyone in the room, through a channel-layer group, as the
    Channels tutorial does (with Channels' own ``dispatch``, database hop included)."""

    group = ""

    async def connect(self) -> None:
        self.group = "bench." + self.scope["url_route"]["kwargs"]["room"]
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is None:
            await self.close(1003)
        else:
            await self.channel_layer.group_send(self.group, {"type": "bench.message", "text": text_data})

    async def bench_message(self, event: dict[str, Any]) -> None:
        await self.send(text_data=event["text"])


bench_urlpatterns = [
    path("ws/echo", EchoConsumer.as_asgi()),
    re_path(r"^ws/bench/(?P<room>[A-Za-z0-9_-]{1,64})$", BroadcastConsumer.as_asgi()),  # a valid room (§1)
]
