"""Who may open a chat WebSocket: origin, room name, token and resume point (SPEC.md §4)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from chatcore.logs import shorten
from chatcore.protocol import valid_room
from chatcore.settings import Settings
from chatcore.tokens import verify_token

COOKIE_NAME = "chat_token"

logger = logging.getLogger("chat")


class Refusal(Exception):
    """The handshake is refused with HTTP 403. The message is for the server log, never for the client."""


def log_refusal(path: str, refusal: Refusal | str) -> None:
    """The server log's line for a refused handshake: what was asked for, and why (SPEC.md §4)."""
    logger.info("Refused %s: %s", shorten(path), refusal)


@dataclass(frozen=True, slots=True)
class Handshake:
    user: str
    room: str
    since: int | None
    epoch: str | None


def check_handshake(
    settings: Settings,
    *,
    room: str,
    query: Mapping[str, str],
    cookies: Mapping[str, str],
    origin: str | None,
    port: int,
) -> Handshake:
    """Accept the handshake or raise ``Refusal`` saying why: the three checks below, in order."""
    check_origin(settings, origin, port)
    user = authenticate(settings, query, cookies)
    return check_request(user=user, room=room, query=query)


def check_origin(settings: Settings, origin: str | None, port: int) -> None:
    """A browser's page may connect only from an allowed origin; a request without Origin is not a browser's."""
    if origin is not None and origin not in settings.origins_for(port):
        raise Refusal(origin_refused(origin))


def origin_refused(origin: str) -> str:
    """Why a handshake from ``origin`` is refused, for ``log_refusal`` (and for chapters whose framework checks it)."""
    return f"Origin {shorten(origin)!r} is not allowed; set CHAT_ALLOWED_ORIGINS to allow it."


def authenticate(settings: Settings, query: Mapping[str, str], cookies: Mapping[str, str]) -> str:
    """The user named by the token from ``?token=``, or else from the cookie set by ``/api/token``."""
    token = query.get("token") or cookies.get(COOKIE_NAME)
    if not token:
        raise Refusal(f'No token: pass "?token=" or the "{COOKIE_NAME}" cookie from /api/token.')
    user = verify_token(token, settings)
    if user is None:
        raise Refusal("The token is invalid or expired; get a new one from /api/token.")
    return user


def check_request(*, user: str, room: str, query: Mapping[str, str]) -> Handshake:
    """The room and the resume point (``since`` and ``epoch``) the authenticated ``user`` asks for."""
    if not valid_room(room):
        raise Refusal("Room names are 1-64 characters of A-Z a-z 0-9 _ -.")
    raw_since = query.get("since")
    since = None
    if raw_since is not None:
        if not (raw_since.isascii() and raw_since.isdigit() and len(raw_since) <= 18):
            raise Refusal('"since" must be a non-negative integer.')
        since = int(raw_since)
    epoch = query.get("epoch") or None
    return Handshake(user=user, room=room, since=since, epoch=epoch)
