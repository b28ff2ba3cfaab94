"""Django Channels, written wrong on purpose: one route per pitfall of README.md, for its tests."""

# Each consumer is the naive chat (02_channels/naive.py) with one mistake. Run it alone:
# python 00_protocol/pitfalls/channels_pitfalls.py (port 8022).

import daphne.server  # first: it installs Twisted's asyncio reactor

# isort: split
import json
import os
import time

import django
from django.conf import settings

if not settings.configured:
    settings.configure(
        INSTALLED_APPS=["channels"],
        ROOT_URLCONF=__name__,
        CHANNEL_LAYERS={"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}},
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    )
    django.setup()

# isort: split
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.routing import ProtocolTypeRouter, URLRouter
from daphne.endpoints import build_endpoint_description_strings
from django.db import connection
from django.urls import re_path

urlpatterns: list[object] = []  # no HTTP views
QUERY_SECONDS = 0.5  # a slow database query, standing for any blocking call


def save(message: str) -> None:
    """Store the message with Django's ORM (a query on its database connection, as slow as a slow query)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s", [message])
    time.sleep(QUERY_SECONDS)


class NoAcceptConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]  # Channels has no type hints
    async def connect(self) -> None:
        pass  # Pitfall 4: no self.accept(); daphne waits for it, then drops the connection


class ChatConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]
    """The naive consumer, relaying to its room's group; ``store`` saves each message first."""

    async def connect(self) -> None:
        self.room_group_name = f"{type(self).__name__}_{self.scope['url_route']['kwargs']['room_name']}"
        await self.channel_layer.group_add(self.room_group_name, self.channel_name)
        await self.accept()

    async def disconnect(self, close_code: int) -> None:
        await self.channel_layer.group_discard(self.room_group_name, self.channel_name)

    async def receive(self, text_data: str) -> None:
        message = json.loads(text_data)["message"]
        await self.store(message)
        await self.channel_layer.group_send(self.room_group_name, {"type": "chat.message", "message": message})

    async def store(self, message: str) -> None:
        pass

    async def chat_message(self, event: dict[str, str]) -> None:
        await self.send(text_data=json.dumps({"message": event["message"]}))


class BlockingConsumer(ChatConsumer):
    async def store(self, message: str) -> None:
        time.sleep(QUERY_SECONDS)  # noqa: ASYNC251  # Pitfall 5: a blocking call in an async consumer freezes all


class OrmConsumer(ChatConsumer):
    async def store(self, message: str) -> None:
        save(message)  # Pitfall 5, with the ORM: Django refuses (SynchronousOnlyOperation) and the consumer dies


class OrmFixedConsumer(ChatConsumer):
    async def store(self, message: str) -> None:
        await database_sync_to_async(save)(message)  # the fix: in a thread, with Django's connection handling


websocket_urlpatterns = [
    re_path(r"no-accept/(?P<room_name>\w+)/$", NoAcceptConsumer.as_asgi()),
    re_path(r"blocking/(?P<room_name>\w+)/$", BlockingConsumer.as_asgi()),
    re_path(r"orm/(?P<room_name>\w+)/$", OrmConsumer.as_asgi()),
    re_path(r"orm-fixed/(?P<room_name>\w+)/$", OrmFixedConsumer.as_asgi()),
]
application = ProtocolTypeRouter({"websocket": URLRouter(websocket_urlpatterns)})


if __name__ == "__main__":
    host, port = os.environ.get("CHAT_HOST", "127.0.0.1"), int(os.environ.get("CHAT_PORT", "8022"))
    daphne.server.Server(application, endpoints=build_endpoint_description_strings(host=host, port=port)).run()
