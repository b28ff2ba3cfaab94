"""The naive chat, as the Channels tutorial writes it: a consumer that relays to its room's group, on daphne."""

# This is where a student starts, and the benchmarks' baseline for chapter 2 (benchmarks/README.md): it relays
# every frame to its room and nothing more, with Channels' defaults (its dispatch, the in-memory channel layer,
# or channels-redis's pub/sub layer when CHAT_REDIS_URL is set). No token, no history, no limits; past the
# layer's capacity (100 messages per consumer) group messages are dropped without a word. The tutorial's
# AuthMiddlewareStack and AllowedHostsOriginValidator are left out: they cost a database query per connection,
# nothing per message. The chapter's chat/ is the correct version. Run it alone: python 02_channels/naive.py
# (port 8012). One file instead of the tutorial's project, so that it can be served alone.

import daphne.server  # first: it installs Twisted's asyncio reactor

# isort: split
import json
import os

import django
from django.conf import settings

if not settings.configured:
    layer = (
        {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer", "CONFIG": {"hosts": [redis_url]}}
        if (redis_url := os.environ.get("CHAT_REDIS_URL"))
        else {"BACKEND": "channels.layers.InMemoryChannelLayer"}
    )
    settings.configure(INSTALLED_APPS=["channels"], ROOT_URLCONF=__name__, CHANNEL_LAYERS={"default": layer})
    django.setup()

# isort: split
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.routing import ProtocolTypeRouter, URLRouter
from daphne.endpoints import build_endpoint_description_strings
from django.urls import re_path

urlpatterns: list[object] = []  # no HTTP views


class ChatConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]  # Channels has no type hints
    async def connect(self) -> None:
        self.room_name = self.scope["url_route"]["kwargs"]["room_name"]
        self.room_group_name = f"chat_{self.room_name}"

        # Join room group
        await self.channel_layer.group_add(self.room_group_name, self.channel_name)

        await self.accept()

    async def disconnect(self, close_code: int) -> None:
        # Leave room group
        await self.channel_layer.group_discard(self.room_group_name, self.channel_name)

    # Receive message from WebSocket
    async def receive(self, text_data: str) -> None:
        text_data_json = json.loads(text_data)
        message = text_data_json["message"]

        # Send message to room group
        await self.channel_layer.group_send(self.room_group_name, {"type": "chat.message", "message": message})

    # Receive message from room group
    async def chat_message(self, event: dict[str, str]) -> None:
        message = event["message"]

        # Send message to WebSocket
        await self.send(text_data=json.dumps({"message": message}))


websocket_urlpatterns = [re_path(r"ws/chat/(?P<room_name>\w+)/$", ChatConsumer.as_asgi())]

application = ProtocolTypeRouter({"websocket": URLRouter(websocket_urlpatterns)})


if __name__ == "__main__":
    host, port = os.environ.get("CHAT_HOST", "127.0.0.1"), int(os.environ.get("CHAT_PORT", "8012"))
    daphne.server.Server(application, endpoints=build_endpoint_description_strings(host=host, port=port)).run()
