"""What SPEC.md needs and uvicorn lacks, each in a subclass of uvicorn's own: limits and a deadline on request heads,
backpressure on the pongs it answers pings with, a write without waiting (``write_now``), 1001 on shutdown, and a
client's invalid UTF-8 logged without a traceback. server.py passes them to uvicorn; nothing else refers to them."""

from __future__ import annotations

import asyncio
import logging
import socket
from http import HTTPStatus
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request
from websockets.protocol import State

from chatcore.hub import Hub
from chatcore.limits import HEAD_TIMEOUT, HeadGuard, refusal
from chatcore.protocol import SLOW_CONSUMER
from chatcore.session import CLOSE_TIMEOUT, WRITE_NOW

logger = logging.getLogger("chat")

# Limits
READ_CHUNK = 2**14  # bytes of a read that the WebSocket protocol parses at once


class HttpProtocol(H11Protocol):
    """uvicorn's HTTP/1.1 connection (h11), with SPEC.md §4.1's limits on every request head.

    uvicorn waits for ever for a head that stops half-way (a socket each, until the process runs out of
    descriptors), and hands a WebSocket upgrade with a too long line to the websockets library, whose 414 it never
    sends. Here each head must arrive within HEAD_TIMEOUT of the connection opening (or, on a connection kept
    alive, of its first byte), and a head over the limits is refused before h11 or websockets see it.
    """

    guard: HeadGuard

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Start the head's deadline: uvicorn waits for ever (tests/test_04_handshake.py::test_slow_head_is_closed)."""
        super().connection_made(transport)  # type: ignore[arg-type]
        self.guard = HeadGuard(
            self.loop.call_later, too_slow=self.too_slow, refuse=self.refuse, abort=self.transport.close
        )

    def data_received(self, data: bytes) -> None:
        """Check the head first: uvicorn never sends websockets' 414 (test_04_handshake.py::test_oversized_head)."""
        if self.guard.feed(data):
            super().data_received(data)

    def on_response_complete(self) -> None:
        """The next head on a kept-alive connection gets the same check (no test sends two requests on one yet)."""
        super().on_response_complete()
        self.guard.next_request()

    def connection_lost(self, exc: Exception | None) -> None:
        """uvicorn's, and the head's deadline cancelled: a closed connection keeps no timer."""
        self.guard.cancel()
        super().connection_lost(exc)

    def too_slow(self) -> None:
        logger.debug("%s:%s - request head not complete after %g s: closed", *self.client_address(), HEAD_TIMEOUT)
        self.transport.close()

    def refuse(self, status: HTTPStatus) -> None:
        logger.info("%s:%s - request head refused: %d %s", *self.client_address(), status.value, status.phrase)
        self.transport.write(refusal(status))
        self.transport.write_eof()  # the client sees the end of the response, and closes

    def client_address(self) -> tuple[Any, Any]:
        return self.client or ("-", "-")


class WebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's WebSocket connection (websockets' sans-I/O protocol), closed as a slow consumer when a client
    sends pings and reads nothing.

    uvicorn answers each ping at once, without flow control, even after a close frame has gone: the pongs pile
    up in the transport's write buffer for as long as the client sends pings. Once the pongs buffered while the
    write buffer is above its high-water mark exceed that mark themselves, nothing more is read from the
    connection, it is closed with 4001 (unless a close frame has gone already) and aborted after CLOSE_TIMEOUT
    (SPEC.md §13.4).
    """

    unsent_pongs = 0  # bytes of pongs written while the transport was paused (above its high-water mark)
    flush_handle: asyncio.Handle | None = None  # write_now's frames are written by flush(), once per turn
    unflushed = 0  # bytes of the frames write_now() handed to the protocol since the last flush() or pong

    def data_received(self, data: bytes) -> None:
        """Parse a read 16 KiB at a time: uvicorn parses it whole (tests/test_19_load.py::test_ping_flood)."""
        # 16 KiB at a time: a 256 KiB read of 6-byte pings is 40,000 frames parsed at once, megabytes of them, and
        # a flood of them is noticed (handle_ping) only after each read is done.
        for start in range(0, len(data), READ_CHUNK):
            if self.transport.is_closing():
                return
            super().data_received(data[start : start + READ_CHUNK])

    def handle_ping(self) -> None:
        """Count pongs buffered while the client reads nothing: no limit in uvicorn (test_19_load::test_ping_flood)."""
        # uvicorn writes the pong (queued already) with the frames write_now() buffered: those are not pongs.
        buffered = self.transport.get_write_buffer_size() + self.unflushed
        super().handle_ping()
        self.unflushed = 0
        if not self.writable.is_set():  # paused: the client is not reading
            self.unsent_pongs += max(0, self.transport.get_write_buffer_size() - buffered)
            if self.unsent_pongs > self.transport.get_write_buffer_limits()[1] and self.transport.is_reading():
                self.close_slow_consumer()

    def resume_writing(self) -> None:
        """The client reads again: its unread pongs are counted from zero again (no test fails without it)."""
        super().resume_writing()
        self.unsent_pongs = 0  # the client reads

    def handle_connect(self, event: Request) -> None:
        """Give the app ``write_now`` as an ASGI extension: uvicorn's ``send()`` always awaits (a speed-up, no test)."""
        super().handle_connect(event)
        if self.response.status_code == 101:  # a handshake the app will see: an ASGI extension for it (WRITE_NOW)
            self.scope["extensions"][WRITE_NOW] = {"write": self.write_now}

    def write_now(self, text: str) -> bool:
        """What ``send()`` does for a ``websocket.send`` of text, without waiting, if the connection takes the frame:
        accepted, open, and its write buffer below the high-water mark. Otherwise the session queues it for
        ``write_frames``, whose ``send_text()`` waits for the client to read (SPEC.md §13.4). The frames of one
        turn of the event loop go out together, in one system call, right after it (``flush``), or at once past
        the high-water mark."""
        if not self.handshake_complete or self.close_sent or not self.writable.is_set() or self.transport.is_closing():
            return False
        if self.initial_response is not None or self.conn.state is not State.OPEN:
            return False
        data = text.encode()
        self.conn.send_text(data)  # into the protocol's buffer, which every write of uvicorn's empties first
        self.unflushed += len(data) + (2 if len(data) < 126 else 4 if len(data) < 65536 else 10)  # with its header
        if self.unflushed > self.transport.get_write_buffer_limits()[1]:
            self.flush()  # the transport pauses if the client is behind: the next frames go to the queue
        elif self.flush_handle is None:
            self.flush_handle = self.loop.call_soon(self.flush)
        return True

    def flush(self) -> None:
        self.flush_handle, self.unflushed = None, 0
        if not self.transport.is_closing():
            self.transport.write(b"".join(self.conn.data_to_send()))

    def close_slow_consumer(self) -> None:
        """What uvicorn does for the application's ``websocket.close``, but at once, reading no more, and aborting
        the connection (uvicorn's close() would wait for ever) if the client has not read it after CLOSE_TIMEOUT."""
        self.transport.pause_reading()
        self.read_paused = False  # or receive() would resume reading
        if not self.close_sent:
            self.queue.put_nowait(
                {"type": "websocket.disconnect", "code": SLOW_CONSUMER.code, "reason": SLOW_CONSUMER.reason}
            )
            self.conn.send_close(SLOW_CONSUMER.code, SLOW_CONSUMER.reason)
            self.transport.write(b"".join(self.conn.data_to_send()))
            self.close_sent = True
        if self.close_timer is not None:
            self.close_timer.cancel()
        self.close_timer = self.loop.call_later(CLOSE_TIMEOUT, self.transport.abort)


class ChatServer(uvicorn.Server):
    """uvicorn that closes chat connections with 1001 (SPEC.md §14) before its own shutdown sends 1012."""

    def __init__(self, config: uvicorn.Config, hub: Hub) -> None:
        """uvicorn's server, with the hub its shutdown closes."""
        super().__init__(config)
        self.hub = hub

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """1001 first: uvicorn closes WebSockets with 1012 (tests/test_14_shutdown.py::test_shutdown_closes_1001)."""
        for server in self.servers:
            server.close()  # stop accepting first
        await self.hub.shutdown()
        await super().shutdown(sockets)


class ClientFaultsWithoutTraceback(logging.Filter):
    """uvicorn logs a client's invalid UTF-8 with a traceback; it is the client's fault: one line is enough."""

    def filter(self, record: logging.LogRecord) -> bool:
        """One line, not a traceback (tests/test_15_robustness.py::test_invalid_utf8_closes_1007)."""
        if record.exc_info and record.getMessage() == "Invalid UTF-8 sequence received from client.":
            record.exc_info = None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True
