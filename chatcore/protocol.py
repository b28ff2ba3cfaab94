"""The wire format: names, close codes, client-frame validation and server-frame encoding (SPEC.md §5-§13)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

USER_RE = re.compile(r"[A-Za-z0-9_.\-]{1,32}")
ROOM_RE = re.compile(r"[A-Za-z0-9_\-]{1,64}")
ID_RE = re.compile(r"[A-Za-z0-9_.:\-]{1,64}")
MAX_TEXT = 2000


def valid_user(name: str) -> bool:
    return USER_RE.fullmatch(name) is not None


def valid_room(name: str) -> bool:
    return ROOM_RE.fullmatch(name) is not None


# Close codes (SPEC.md §13, §11, §14)


@dataclass(frozen=True, slots=True)
class Close:
    """Why a connection ended: the close code and reason, and the ``reason`` label of the disconnect metric.

    ``send`` is false when the close frame already went (or can't go): the client or the library closed.
    """

    code: int
    reason: str
    label: str
    send: bool = True


GOING_AWAY = Close(1001, "server shutting down", "shutdown")
BINARY_FRAME = Close(1003, "binary frames are not supported; send JSON text frames", "binary_frame")
RATE_LIMITED = Close(1008, "rate limit exceeded", "rate_limited")
INTERNAL_ERROR = Close(1011, "internal error", "internal_error")
UNAVAILABLE = Close(1013, "try again later", "unavailable")  # the backend (Redis) is down, or lost the room's history
HEARTBEAT_TIMEOUT = Close(4000, "heartbeat timeout", "heartbeat_timeout")
SLOW_CONSUMER = Close(4001, "slow consumer", "slow_consumer")


def closed_by_peer(code: int | None) -> Close:
    """The ``Close`` for a connection that the client (or its network, or the WebSocket library) ended."""
    if code in (None, 1005, 1006):
        return Close(code or 1006, "", "connection_lost", send=False)
    if code == 1009:
        return Close(1009, "", "message_too_big", send=False)
    if code == SLOW_CONSUMER.code:  # the server's WebSocket layer closed it: its pongs piled up unread (§13.4)
        return Close(SLOW_CONSUMER.code, SLOW_CONSUMER.reason, SLOW_CONSUMER.label, send=False)
    if code in (1002, 1007):
        return Close(code, "", "protocol_error", send=False)
    return Close(code, "", "client_closed", send=False)


# Client → server frames (SPEC.md §5, §7, §11)


@dataclass(frozen=True, slots=True)
class ChatMessage:
    id: str
    text: str


@dataclass(frozen=True, slots=True)
class Ping:
    pass


@dataclass(frozen=True, slots=True)
class Pong:
    pass


ClientFrame = ChatMessage | Ping | Pong


class ProtocolError(Exception):
    """A client frame that breaks the protocol; answered with an ``error`` frame, the connection stays open."""

    def __init__(self, code: str, detail: str, id: str | None = None) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.id = id


def parse_client_frame(text: str) -> ClientFrame:
    """Validate one text frame; raise ``ProtocolError`` with a message that says what to send instead."""
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError("invalid_json", f"Frame is not valid JSON: {exc}.") from None
    if not isinstance(data, dict):
        raise ProtocolError("invalid_message", 'Frame must be a JSON object with a "type" field.')
    raw_id = data.get("id")
    msg_id = raw_id if isinstance(raw_id, str) and ID_RE.fullmatch(raw_id) else None
    kind = data.get("type")
    if not isinstance(kind, str):
        raise ProtocolError("invalid_message", '"type" must be a string.', msg_id)
    if kind == "chat.message":
        return _parse_chat_message(data, msg_id)
    if kind in ("ping", "pong"):
        if len(data) != 1:
            raise ProtocolError("invalid_message", f'A "{kind}" frame has no fields besides "type".', msg_id)
        return Ping() if kind == "ping" else Pong()
    raise ProtocolError("unknown_type", f'Unknown type {kind[:64]!r}: send "chat.message", "ping" or "pong".', msg_id)


def _parse_chat_message(data: dict[str, Any], msg_id: str | None) -> ChatMessage:
    extra = sorted(set(data) - {"type", "id", "payload"})
    if extra:
        raise ProtocolError("invalid_message", f"Unexpected field(s) {', '.join(extra)[:200]}.", msg_id)
    if msg_id is None:
        raise ProtocolError("invalid_message", '"id" must be 1-64 characters of A-Z a-z 0-9 _ . : -')
    payload = data.get("payload")
    if not isinstance(payload, dict):
        raise ProtocolError("invalid_message", '"payload" must be an object like {"text": "hi"}.', msg_id)
    extra = sorted(set(payload) - {"text"})
    if extra:
        raise ProtocolError("invalid_message", f"Unexpected payload field(s) {', '.join(extra)[:200]}.", msg_id)
    text = payload.get("text")
    if not isinstance(text, str) or not 1 <= len(text) <= MAX_TEXT:
        raise ProtocolError("invalid_message", f'"payload.text" must be a string of 1-{MAX_TEXT} characters.', msg_id)
    return ChatMessage(id=msg_id, text=text)


# Server → client frames. Encoded once, then the same string goes to every recipient.


def encode(frame: dict[str, Any]) -> str:
    return orjson.dumps(frame).decode()


PING_FRAME = encode({"type": "ping"})
PONG_FRAME = encode({"type": "pong"})


def welcome_frame(
    *, user: str, room: str, members: list[str], seq: int, epoch: str, resumed: bool, heartbeat: float
) -> str:
    payload = {
        "user": user,
        "room": room,
        "members": members,
        "seq": seq,
        "epoch": epoch,
        "resumed": resumed,
        "heartbeat": int(heartbeat) if heartbeat.is_integer() else heartbeat,
    }
    return encode({"type": "welcome", "payload": payload})


def message_frame(*, seq: int, id: str, user: str, text: str, ts: int) -> str:
    return encode({"type": "chat.message", "seq": seq, "payload": {"id": id, "user": user, "text": text, "ts": ts}})


def ack_frame(*, id: str, seq: int) -> str:
    return encode({"type": "ack", "id": id, "seq": seq})


def presence_frame(kind: str, *, user: str, count: int) -> str:
    return encode({"type": f"presence.{kind}", "payload": {"user": user, "count": count}})


def error_frame(*, code: str, detail: str, id: str | None = None) -> str:
    return encode({"type": "error", "id": id, "payload": {"code": code, "detail": detail}})
