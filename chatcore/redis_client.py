"""redis-py, set up for the chat: one pool per process, deadlines, Redis errors as ``BackendUnavailable``, and the
names of a room's keys and pub/sub channel. What the backend (``backend_redis``) and the fan-out (``fanout_redis``),
and chapter 2's channel layer, share."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as redis
from redis.asyncio.connection import (
    AbstractConnection,
    Connection,
    SSLConnection,
    UnixDomainSocketConnection,
    parse_url,
)
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from chatcore.backend import BackendUnavailable

# Timeouts
REDIS_TIMEOUT = 5.0  # a call waiting on Redis (for a pooled connection, then the answer) while Redis is silent: 1013
REDIS_PATIENCE = 60.0  # the longest a call waits while Redis answers others (in a process too busy to read sooner)
# Limits
REDIS_CONNECTIONS = 50  # per process. Redis runs one command at a time: more connections add no throughput


def keys(room: str) -> tuple[str, str, str, str]:
    """The keys of a room: meta, history, ids, presence."""
    prefix = f"chat:{{{room}}}"
    return f"{prefix}:meta", f"{prefix}:history", f"{prefix}:ids", f"{prefix}:presence"


def channel(room: str) -> str:
    """The pub/sub channel of a room (chatcore.fanout_redis): "<seq> <frame>" for a chat message, "0 <topic> <user>
    <frame>" for a presence change."""
    return f"chat:{{{room}}}:fanout"


def room_of(channel_name: str) -> str:
    """The room whose pub/sub channel (``channel(room)``) is ``channel_name``."""
    return channel_name[channel_name.index("{") + 1 : channel_name.rindex("}")]


class Hearing:
    """When this process last heard from Redis: an answer to any call, a message on its pub/sub connection.

    That, not how long one call has waited, tells a stalled Redis from a busy process. In a process delivering a
    burst, an answer waits its turn of the event loop behind thousands of deliveries before it is read, and a
    call waits for a pooled connection behind the calls before it: with 1,000 clients of one room sending at
    once, chapter 2's calls waited up to 10 s while Redis went on answering the others."""

    def __init__(self) -> None:
        self.last = -math.inf  # the event loop's time of the last answer

    def heard(self) -> None:
        self.last = asyncio.get_running_loop().time()


hearing = Hearing()


class Heard(AbstractConnection):
    """A connection to Redis that tells ``hearing`` of everything it reads: answers, pub/sub messages."""

    async def read_response(
        self,
        disable_decoding: bool = False,
        timeout: float | None = None,  # noqa: ASYNC109  # redis-py's signature
        *,
        disconnect_on_error: bool = True,
        push_request: bool | None = False,
    ) -> Any:
        """redis-py's, and ``hearing`` told: what Redis's deadline (``errors_as_unavailable``) measures silence by."""
        response = await super().read_response(
            disable_decoding, timeout, disconnect_on_error=disconnect_on_error, push_request=push_request
        )
        if response is not None or timeout is None:  # None after a read's own timeout (pub/sub polls) is silence
            hearing.heard()
        return response


class HeardConnection(Heard, Connection):
    pass


class HeardSSLConnection(Heard, SSLConnection):
    pass


class HeardUnixConnection(Heard, UnixDomainSocketConnection):
    pass


HEARD = {
    Connection: HeardConnection,
    SSLConnection: HeardSSLConnection,
    UnixDomainSocketConnection: HeardUnixConnection,
}


def connection_options(url: str) -> dict[str, Any]:
    """redis-py's connection settings for ``url`` (for a pool, or a channel layer's ``hosts``): connections that
    tell ``hearing`` what they read; a connection that a Redis restart broke is reopened and the command retried
    twice, quickly. No read timeout: ``errors_as_unavailable()`` bounds each call instead. (redis-py bounds reads
    and writes with ``asyncio.wait_for``, which on Python 3.11 can swallow the cancellation of the task that waits,
    CPython issue gh-86296: a connection's writer, cancelled as its client left, would go on for ever. And an idle
    pub/sub connection must not time out at all.)"""
    host: dict[str, Any] = dict(parse_url(url))
    return {
        **host,
        "connection_class": HEARD[host.get("connection_class", Connection)],
        # Timeouts
        "socket_connect_timeout": 2,
        "socket_timeout": None,
        "retry": Retry(ExponentialBackoff(cap=0.2, base=0.02), retries=2),
        "retry_on_error": [redis.ConnectionError],
    }


def connect(url: str) -> redis.Redis:
    """redis-py's asyncio client for the backend and the fan-out, on a pool of at most REDIS_CONNECTIONS.

    redis-py's default pool opens a connection per concurrent command and, past its cap, fails at once
    ("Too many connections"): a burst of clients would be closed with 1013 while Redis is fine. This pool makes
    a command wait for a free connection instead, as long as ``errors_as_unavailable()`` lets it."""
    pool = redis.BlockingConnectionPool(
        max_connections=REDIS_CONNECTIONS, timeout=REDIS_PATIENCE, decode_responses=True, **connection_options(url)
    )
    return redis.Redis.from_pool(pool)


class Deadline:
    """Expires ``timeout`` once Redis has said nothing for ``within`` seconds while the call waits, or once the call
    has waited REDIS_PATIENCE in all."""

    def __init__(self, timeout: asyncio.Timeout, within: float) -> None:
        self.loop = asyncio.get_running_loop()
        self.timeout, self.within = timeout, within
        self.began = self.loop.time()
        self.timer = self.loop.call_at(self.began + within, self.expire_if_due)
        self.why: str | None = None  # once expired

    def expire_if_due(self) -> None:
        silent, patience = max(self.began, hearing.last) + self.within, self.began + REDIS_PATIENCE
        if min(silent, patience) > self.loop.time():
            self.timer = self.loop.call_at(min(silent, patience), self.expire_if_due)
            return
        if silent <= self.loop.time():
            self.why = f"Redis did not answer within {self.within:g} s"
        else:
            self.why = f"Redis did not answer within {REDIS_PATIENCE:g} s (it answered others)"
        self.timeout.reschedule(self.loop.time())  # asyncio.timeout cancels the call, and raises TimeoutError


@contextlib.asynccontextmanager
async def errors_as_unavailable(within: float | None = REDIS_TIMEOUT) -> AsyncIterator[None]:
    """Turn redis-py's errors, and a wait on a Redis that has been silent for ``within`` seconds (``Hearing``), into
    ``BackendUnavailable``."""
    deadline = None
    try:
        async with asyncio.timeout(None) as timeout:
            deadline = None if within is None else Deadline(timeout, within)
            try:
                yield
            finally:
                if deadline is not None:
                    deadline.timer.cancel()
    except redis.RedisError as exc:
        raise BackendUnavailable(f"Redis: {exc}") from exc
    except TimeoutError:
        if deadline is None or deadline.why is None:
            raise  # not Redis's: the body's own
        raise BackendUnavailable(deadline.why) from None
