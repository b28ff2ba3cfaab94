"""Prometheus metrics shared by every implementation (SPEC.md §2.4)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, disable_created_metrics, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

disable_created_metrics()  # type: ignore[no-untyped-call]  # keep /metrics to the series the SPEC names

CONNECTIONS = Gauge("chat_connections", "Open chat WebSocket connections.")
MESSAGES_RECEIVED = Counter("chat_messages_received", "Valid chat.message frames accepted from clients.")


class PlainCounter(Collector):
    """A counter for what happens once per delivery: a plain number, read when ``/metrics`` is. prometheus_client's
    ``Counter.inc`` takes a lock and checks its argument, which cost a busy room an eighth of its time. (Only for
    counters updated on the event loop's thread: the lock is what makes ``Counter`` safe across threads.)"""

    def __init__(self, name: str, documentation: str) -> None:
        self.name, self.documentation, self.value = name, documentation, 0
        REGISTRY.register(self)

    def inc(self) -> None:
        self.value += 1

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(self.name, self.documentation, value=self.value)


MESSAGES_DELIVERED = PlainCounter("chat_messages_delivered", "chat.message frames handed to a client's socket.")
FANOUT_GAPS = Counter(
    "chat_fanout_gaps", "Gaps in a connection's stream of messages (lost by the fan-out), refilled from history."
)
DISCONNECTS = Counter("chat_disconnects", "Chat connections that ended, by reason.", ["reason"])


def render() -> tuple[bytes, str]:
    """The body and content type of ``GET /metrics``."""
    return generate_latest(), CONTENT_TYPE_LATEST
