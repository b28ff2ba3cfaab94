"""Who may open the chat WebSocket: Channels' Origin check and a token authentication middleware (SPEC.md §4)."""

from collections.abc import Collection
from typing import Any
from urllib.parse import ParseResult, parse_qsl

from channels.middleware import BaseMiddleware
from channels.security import websocket as security
from django.conf import settings

from chatcore.handshake import Refusal, authenticate, log_refusal, origin_refused
from chatcore.settings import Settings

Scope = dict[str, Any]
ASGIApp = Any  # what Channels' middleware wraps: an ASGI application


class OriginValidator(security.OriginValidator):  # type: ignore[misc]  # Channels has no type hints
    """Channels' Origin check for one request, with SPEC.md §4's rule for a request without Origin, and a logged
    refusal."""

    def __init__(self, application: ASGIApp, allowed_origins: Collection[str], path: str) -> None:
        """Channels', and the request's path, for the log line of a refusal: Channels logs none (no test)."""
        super().__init__(application, allowed_origins)
        self.path = path

    def valid_origin(self, parsed_origin: ParseResult | None) -> bool:
        """No Origin passes: Channels refuses it (tests/test_04_handshake.py::test_origin_default).

        No browser sent it; non-browser clients can send any Origin they like, so refusing them would protect
        nothing."""
        if parsed_origin is None or super().valid_origin(parsed_origin):
            return True
        log_refusal(self.path, origin_refused(parsed_origin.geturl()))
        return False


def ChatOriginValidator(application: ASGIApp) -> ASGIApp:  # named like Channels' factories
    """Like Channels' ``AllowedHostsOriginValidator``, but the allowed origins are CHAT_ALLOWED_ORIGINS or else
    this server's own, on the port the connection came in on (SPEC.md §4)."""

    async def validate(scope: Scope, receive: Any, send: Any) -> None:
        chat: Settings = settings.CHAT
        origins = chat.origins_for(scope["server"][1] if scope.get("server") else chat.port)
        await OriginValidator(application, origins, scope["path"])(scope, receive, send)

    return validate


class TokenAuthMiddleware(BaseMiddleware):  # type: ignore[misc]
    """Authenticates the connection by its chat token (``?token=`` or the ``chat_token`` cookie, SPEC.md §3) and
    puts the user's name in ``scope["chat_user"]``. Without a valid token: HTTP 403, the consumer never runs.
    Put it inside Channels' ``CookieMiddleware``, which parses the cookies."""

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> Any:
        try:
            user = authenticate(settings.CHAT, query_params(scope), scope["cookies"])
        except Refusal as refusal:
            log_refusal(scope["path"], refusal)
            return await security.WebsocketDenier.as_asgi()(scope, receive, send)
        return await super().__call__(dict(scope, chat_user=user), receive, send)


def query_params(scope: Scope) -> dict[str, str]:
    """The query string's parameters, the last value of each (as ``request.GET.get`` gives them in a view)."""
    return dict(parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True))
