"""The ASGI application: Django's views for HTTP, the chat consumer behind Channels' middleware for WebSockets."""

import os

from channels.routing import ProtocolTypeRouter, URLRouter
from channels.sessions import CookieMiddleware
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
django_application = get_asgi_application()  # sets Django up: import the chat's modules after this

from chat.middleware import ChatOriginValidator, TokenAuthMiddleware  # noqa: E402
from chat.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_application,
        "websocket": ChatOriginValidator(CookieMiddleware(TokenAuthMiddleware(URLRouter(websocket_urlpatterns)))),
    }
)
