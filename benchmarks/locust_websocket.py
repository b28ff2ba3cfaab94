"""A lean WebSocket client for Locust's users under gevent: websockets' Sans-I/O protocol, read by its caller."""

from __future__ import annotations

import contextlib
import socket
import time
from collections import deque
from collections.abc import Iterator
from types import TracebackType

from gevent import get_hub
from gevent.event import Event
from gevent.lock import Semaphore
from gevent.socket import wait
from websockets.client import ClientProtocol
from websockets.exceptions import InvalidState
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

# Why not websockets' sync client, which the users had first: it reads in a background thread per connection
# (a greenlet, under Locust's monkey-patching) and hands each message over through a queue guarded by locks,
# which cost Locust more CPU per message than everything else a user does with it. Here the same library's
# Sans-I/O protocol does the WebSocket part (the handshake, frames, masks, pings, the closing handshake, UTF-8),
# and the greenlet that wants a message does the I/O: one recv() takes whatever the kernel has (one frame or
# several), and the protocol parses it. No thread, no queue, no lock on the way in.

OPEN_TIMEOUT = 10.0  # seconds for the TCP connection and the HTTP upgrade
CLOSE_TIMEOUT = 2.0  # seconds to wait for the server to close the TCP connection once the close frames crossed
RECV_SIZE = 65536  # bytes asked of the kernel per recv()


class Closed(Exception):
    """The connection is closed: ``WebSocket.close_code`` says how."""


class WebSocket:
    """An open client connection. ``recv()`` and iterating read; ``send()`` may be called from another greenlet
    meanwhile. Text messages in one frame each (the benchmarks' servers never fragment one): anything else the
    protocol accepts is skipped. It sends no pings of its own (websockets' sync client sent one every 20 s)."""

    def __init__(self, sock: socket.socket, protocol: ClientProtocol, frames: list[Frame]) -> None:
        self.socket = sock
        self.protocol = protocol
        self.frames = deque(frames)  # received and not read yet
        self.drained = False  # the last recv() took all the kernel had
        self.readable = get_hub().loop.io(sock.fileno(), 1)  # an event loop watcher: the socket has bytes to read
        self.reading = False  # a greenlet iterates over the messages: close() leaves the reading to it
        self.ended = Event()  # the socket is closed
        self.sending = Semaphore()  # frames from two greenlets (a message, a pong) must not interleave

    @property
    def close_code(self) -> int | None:
        """Once the connection is closed: the server's close code, or 1006 when there was no close frame."""
        return self.protocol.close_code if self.ended.is_set() else None

    def __enter__(self) -> WebSocket:
        return self

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def __iter__(self) -> Iterator[str]:
        """Every text message until the connection is closed, whoever closes it and however."""
        self.reading = True
        try:
            while True:
                yield self.recv()
        except Closed:
            return
        finally:
            self.reading = False

    def recv(self, timeout: float | None = None) -> str:
        """The next text message. ``TimeoutError`` after ``timeout`` seconds; ``Closed`` once the connection is
        closed (by a close frame or not)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            while self.frames:
                frame = self.frames.popleft()
                if frame.opcode is Opcode.TEXT:
                    return bytes(frame.data).decode()  # the protocol has checked it is UTF-8
            if self.protocol.state is State.CLOSED:
                self.end()
                raise Closed
            self.fill(deadline)

    def fill(self, deadline: float | None) -> None:
        """Wait for more bytes (until ``deadline``, time.monotonic()), and hand them to the protocol; send what it
        answers (pongs, the reply to a close frame)."""
        timeout = None if deadline is None else deadline - time.monotonic()
        if timeout is not None and timeout <= 0:
            raise TimeoutError
        try:
            # gevent's recv() asks the kernel first and waits if told to: after a recv() that took everything,
            # that is a system call and an exception for nothing, at every message. So wait first, then. (And
            # with a deadline, always: the watcher's wait is what has a timeout.)
            if self.drained or timeout is not None:
                wait(self.readable, timeout)  # TimeoutError; Closed if end() is called meanwhile
            received = self.socket.recv(RECV_SIZE)
        except TimeoutError:
            raise
        except OSError:  # reset, or closed by another greenlet
            received = b""
        if received:
            self.drained = len(received) < RECV_SIZE
            self.protocol.receive_data(received)
        else:
            self.protocol.receive_eof()  # 1006 unless the closing handshake is done
        self.frames.extend(event for event in self.protocol.events_received() if isinstance(event, Frame))
        self.flush()

    def send(self, text: str) -> None:
        """One text message. ``Closed`` once the connection is closing."""
        with self.sending:
            try:
                self.protocol.send_text(text.encode())
            except InvalidState:
                raise Closed from None
        self.flush()

    def flush(self) -> None:
        """Send what the protocol has to send; b"" means: end our side of the TCP connection (after the closing
        handshake, the server ends it first, RFC 6455 §7.1.1: the protocol says so only on a failure)."""
        if not self.protocol.writes:  # nothing to send: don't wait behind a greenlet that is sending
            return
        with self.sending:
            for data in self.protocol.data_to_send():
                try:
                    if data:
                        self.socket.sendall(data)
                    else:
                        self.socket.shutdown(socket.SHUT_WR)
                except OSError:
                    self.end()
                    raise Closed from None

    def close(self, code: int = 1000) -> None:
        """The closing handshake (RFC 6455 §7): a close frame, then the server's and the end of the TCP
        connection within CLOSE_TIMEOUT, then the socket is closed. Messages that arrive meanwhile are dropped."""
        if self.ended.is_set():
            return
        with contextlib.suppress(InvalidState):  # closing already
            self.protocol.send_close(code)
        with contextlib.suppress(Closed):
            self.flush()
        if self.reading:  # the greenlet that reads will see the end
            self.ended.wait(CLOSE_TIMEOUT)
        else:
            deadline = time.monotonic() + CLOSE_TIMEOUT
            with contextlib.suppress(Closed, TimeoutError):
                while True:
                    self.recv(deadline - time.monotonic())
        self.end()

    def end(self) -> None:
        """Close the socket, and wake the greenlet that waits to read from it, if any, with ``Closed``."""
        if self.ended.is_set():
            return
        if self.protocol.state is not State.CLOSED:
            self.protocol.receive_eof()  # what the protocol knows of the close code: 1006 without a close frame
        self.ended.set()
        # Wake the greenlet waiting to read with Closed, close the watcher, then the socket (in that order).
        get_hub().cancel_waits_close_and_then([self.readable], Closed, self.socket.close)


def connect(url: str, sock: socket.socket | None = None) -> WebSocket:
    """A connection to ``url`` (``ws://host:port/path?query``): TCP (unless ``sock`` is connected already), then
    the HTTP upgrade of RFC 6455 §4, within ``OPEN_TIMEOUT``."""
    uri = parse_uri(url)
    if sock is None:
        sock = socket.create_connection((uri.host, uri.port), timeout=OPEN_TIMEOUT)
    sock.settimeout(OPEN_TIMEOUT)
    protocol = ClientProtocol(uri, max_size=None)
    try:
        protocol.send_request(protocol.connect())
        sock.sendall(b"".join(protocol.data_to_send()))
        events: list[object] = []
        while not events:  # the response; frames may follow it in the same recv()
            received = sock.recv(RECV_SIZE)
            if received:
                protocol.receive_data(received)
            else:
                protocol.receive_eof()
            events = list(protocol.events_received())
            if not received and not events:
                raise ConnectionError("the server closed the connection before answering the upgrade")
        if protocol.handshake_exc is not None:
            raise protocol.handshake_exc
        assert isinstance(events[0], Response)
    except BaseException:
        sock.close()
        raise
    sock.settimeout(None)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # small frames go at once, as in websockets' client
    return WebSocket(sock, protocol, [event for event in events[1:] if isinstance(event, Frame)])
