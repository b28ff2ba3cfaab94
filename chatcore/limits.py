"""What keeps a server up when clients misbehave on purpose: limits on an HTTP request's head, a deadline for it, and
the process's descriptor limit (SPEC.md §4.1, §19)."""

from __future__ import annotations

import logging
import resource
from collections.abc import Callable
from http import HTTPStatus
from typing import Protocol

logger = logging.getLogger("chat")

# Timeouts
HEAD_TIMEOUT = 10.0  # for a request's head (request line and headers) to arrive, from the connection's start
LINGER = 1.0  # after refusing a head: the rest of it is read and dropped, so that the client reads the refusal
# rather than a reset (closing a socket with unread data resets the connection)
# Limits
MAX_LINE = 8192  # bytes in the request line, or in one header line, CRLF included (as the websockets library counts)
MAX_HEADERS = 100
MAX_HEAD = 16384  # bytes in the whole head (as h11 and Twisted take by default)


class HeadCheck:
    """Reads a request's head as its bytes arrive and says as soon as it breaks a limit: a request line over
    MAX_LINE bytes is 414; a header line over MAX_LINE, more than MAX_HEADERS of them, or a head over MAX_HEAD
    bytes is 431. ``done`` is true once the blank line that ends the head has arrived; what follows it is not
    looked at.

    It looks for line ends only, so a server can refuse before its HTTP parser buffers anything."""

    def __init__(self) -> None:
        self.size = 0  # bytes of the head so far
        self.line = 0  # bytes of the current line so far (its CR included, not its LF)
        self.lines = 0  # complete lines so far: the request line, then headers
        self.done = False

    def feed(self, data: bytes) -> HTTPStatus | None:
        start = 0
        while not self.done:
            end = data.find(b"\n", start)
            length = (len(data) if end < 0 else end + 1) - start
            self.size += length
            self.line += length
            if self.line > MAX_LINE or (end < 0 and self.line == MAX_LINE):  # the LF would make it too long
                return (
                    HTTPStatus.REQUEST_URI_TOO_LONG if self.lines == 0 else HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE
                )
            if self.size > MAX_HEAD:
                return HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE
            if end < 0:
                return None
            if self.line <= 2 and self.lines > 0:  # an empty line (CRLF): the end of the head
                self.done = True
            elif (lines := self.lines + 1) > MAX_HEADERS + 1:  # + 1: the request line
                return HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE
            else:
                self.lines = lines
            self.line = 0
            start = end + 1
        return None


class Timer(Protocol):
    """What a server's ``call_later`` returns: asyncio's ``TimerHandle``, Twisted's ``DelayedCall``."""

    def cancel(self) -> object: ...


class HeadGuard:
    """SPEC.md §4.1 on one HTTP/1.1 connection, for a server whose HTTP protocol hands it every read before its
    parser: each request head must arrive within HEAD_TIMEOUT (of the connection's start or, on a connection kept
    alive, of the head's first byte), and within ``HeadCheck``'s limits.

    ``call_later`` is the server's own (asyncio's or Twisted's). ``too_slow`` ends a connection whose head is late;
    ``refuse(status)`` answers a head over the limits (``refusal``) and half-closes, and ``abort`` ends that
    connection LINGER seconds later."""

    def __init__(
        self,
        call_later: Callable[[float, Callable[[], None]], Timer],
        *,
        too_slow: Callable[[], None],
        refuse: Callable[[HTTPStatus], None],
        abort: Callable[[], None],
    ) -> None:
        self.call_later = call_later
        self.too_slow, self.refuse, self.abort = too_slow, refuse, abort
        self.head: HeadCheck | None = HeadCheck()  # while a request's head is arriving
        self.timer: Timer | None = call_later(HEAD_TIMEOUT, self.expired)
        self.refused = False

    def feed(self, data: bytes) -> bool:
        """Whether the server's parser may have ``data``: not once a head broke a limit (the rest is dropped)."""
        if self.refused:
            return False
        if self.head is not None:
            if self.timer is None:  # the first byte of a head after a response
                self.timer = self.call_later(HEAD_TIMEOUT, self.expired)
            status = self.head.feed(data)
            if status is not None:
                self.refused = True
                self.cancel()
                self.refuse(status)
                self.timer = self.call_later(LINGER, self.expired)
                return False
            if self.head.done:
                self.cancel()
                self.head = None  # the parser reads the body, if any; a WebSocket leaves HTTP for good
        return True

    def next_request(self) -> None:
        """A response is complete on a kept-alive connection: check the next head too (the server's keep-alive
        timeout covers the wait for its first byte)."""
        self.head = HeadCheck()

    def cancel(self) -> None:
        """Stop the timer. The server calls it when the connection is lost: a closed connection keeps none."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def expired(self) -> None:
        self.timer = None  # gone off: Twisted's may not be cancelled any more
        if self.refused:
            self.abort()
        else:
            self.too_slow()


def refusal_body(status: HTTPStatus) -> bytes:
    """What a refusal of a request head says (for a server that writes its own responses)."""
    if status is HTTPStatus.REQUEST_URI_TOO_LONG:
        return f"The request line is longer than {MAX_LINE} bytes.\n".encode()
    return f"More than {MAX_HEADERS} headers, one over {MAX_LINE} bytes, or over {MAX_HEAD} bytes in all.\n".encode()


def refusal(status: HTTPStatus) -> bytes:
    """The whole HTTP response that refuses a request head with ``status``; the connection closes after it."""
    body = refusal_body(status)
    head = (
        f"HTTP/1.1 {status.value} {status.phrase}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


def raise_descriptor_limit() -> None:
    """Raise this process's soft limit on open descriptors to its hard limit, and say so: every connection takes
    one, and many systems start programs with a soft limit of 1,024, which a busy chat reaches in seconds."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 1 << 20  # macOS: "unlimited", but not as a soft limit
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (ValueError, OSError) as exc:
            logger.warning("Open descriptors: could not raise the limit of %d to %d: %s", soft, wanted, exc)
            return
        logger.info("Open descriptors: raised the limit from %d to %d (the hard limit)", soft, wanted)
    else:
        logger.info("Open descriptors: the limit is %d", soft)
