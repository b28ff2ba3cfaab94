"""Prometheus metrics shared by every implementation (SPEC.md §2.4)."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, disable_created_metrics, generate_latest

disable_created_metrics()  # type: ignore[no-untyped-call]  # keep /metrics to the series the SPEC names

CONNECTIONS = Gauge("chat_connections", "Open chat WebSocket connections.")
MESSAGES_RECEIVED = Counter("chat_messages_received", "Valid chat.message frames accepted from clients.")
MESSAGES_DELIVERED = Counter("chat_messages_delivered", "chat.message frames handed to a client's socket.")
FANOUT_GAPS = Counter(
    "chat_fanout_gaps", "Gaps in a connection's stream of messages (lost by the fan-out), refilled from history."
)
DISCONNECTS = Counter("chat_disconnects", "Chat connections that ended, by reason.", ["reason"])


def render() -> tuple[bytes, str]:
    """The body and content type of ``GET /metrics``."""
    return generate_latest(), CONTENT_TYPE_LATEST
