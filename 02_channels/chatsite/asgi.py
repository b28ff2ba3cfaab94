"""The ASGI application: Django's views for HTTP, the chat consumer behind Channels' middleware for WebSockets."""

import os

from channels.routing import ProtocolTypeRouter, URLRouter
from channels.sessions import CookieMiddleware
from django.conf import settings
from django.core.asgi import get_asgi_application
from django.urls import re_path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
django_application = get_asgi_application()  # sets Django up: import the chat's modules after this

from chat.bench import bench_urlpatterns  # noqa: E402
from chat.middleware import ChatOriginValidator, TokenAuthMiddleware  # noqa: E402
from chat.routing import websocket_urlpatterns  # noqa: E402

websocket = ChatOriginValidator(CookieMiddleware(TokenAuthMiddleware(URLRouter(websocket_urlpatterns))))
if settings.CHAT.bench_endpoints:  # SPEC.md §18: the bare framework's baselines, before the chat's middleware
    websocket = URLRouter([*bench_urlpatterns, re_path(r"", websocket)])

application = ProtocolTypeRouter({"http": django_application, "websocket": websocket})
