"""The WebSocket routes: the chat, and a 403 for any other path."""

from channels.security.websocket import WebsocketDenier
from django.urls import path, re_path

from chat.consumers import ChatConsumer

websocket_urlpatterns = [
    path("ws/chat/<str:room>", ChatConsumer.as_asgi()),  # the consumer checks the name (SPEC.md §4)
    re_path(r"", WebsocketDenier.as_asgi()),  # unknown path: refused, not a "No route found" traceback
]
