"""What SPEC.md needs and the library's connection lacks: ``ChatConnection`` (server.py passes it to ``serve()`` as
``create_connection``), and three functions around the library's API: ``receive()``, ``close_code()`` and
``abort_if_data_followed()``. Each override's docstring says what the library does instead and which test fails
without it (in tests/, the conformance suite, unless it says otherwise)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.protocol import Event, State

from chatcore.protocol import SLOW_CONSUMER

# Limits
READ_CHUNK = 2**14  # bytes of a read that the library parses at once


class ChatConnection(ServerConnection):
    """The library's connection, with its close timeout applied when the client ends the connection, too.

    When a client sends a close frame (or breaks the protocol, and the library closes with 1009, 1007 or 1002),
    or half-closes TCP, the library waits for the TCP connection to end. It gives up after ``close_timeout``
    only while a ``send()`` or ``close()`` is waiting; ``recv()`` waits for ever. So a client that reads
    nothing more would keep its place in the room until the heartbeat timeout.

    And a slow consumer that sends pings: the library answers them without flow control, even after a close
    frame has gone, so a client that sends pings and reads nothing would make the write buffer grow without
    bound. Once the pongs buffered while the write buffer is above ``write_limit`` exceed ``write_limit``
    themselves, nothing more is read from the connection, and it is closed with 4001 (unless a close frame has
    gone already) and aborted after ``close_timeout`` (SPEC.md §13.4).

    And ``write_now``: what ``broadcast()`` does, for a frame nothing is queued before, so that the frames of
    one turn of the event loop go out in one system call (README.md, "Why per-connection queues").
    """

    abort_timer: asyncio.TimerHandle | None = None
    flush_handle: asyncio.Handle | None = None  # write_now's frames are written by flush(), once per turn
    unflushed = 0  # bytes of frames write_now() handed to the protocol since the last flush()
    on_slow_consumer: Callable[[], None] | None = None  # chat() sets it: the session's close with 4001
    unsent_pongs = 0  # bytes of pongs written while the write buffer was above write_limit

    def process_event(self, event: Event) -> None:
        """Count the pongs a client leaves unread: the library has no limit (tests/test_19_load.py::test_ping_flood)."""
        super().process_event(event)  # the library wrote the pong already, in data_received
        if isinstance(event, Frame) and event.opcode is Opcode.PING and self.paused:
            self.unsent_pongs += 2 + len(event.data)  # a pong's header is 2 bytes (its payload is <= 125)
            if self.unsent_pongs > self.write_limit_high and self.transport.is_reading():
                self.close_slow_consumer()

    def resume_writing(self) -> None:
        """The client reads again: its unread pongs are counted from zero again (no test fails without it).

        Without it, a client that once fell behind while sending pings, then caught up, would be closed with 4001
        sooner the next time it falls behind; no test makes a client fall behind twice."""
        super().resume_writing()
        self.unsent_pongs = 0  # the client reads

    def write_now(self, frame: str) -> bool:
        """Write a text frame without waiting, as ``broadcast()`` does, if the connection takes it: open, and its
        write buffer below ``write_limit``. Otherwise the session queues it for ``write_frames``, whose ``send()``
        waits for the client to read (SPEC.md §13.4). The frames of one turn of the event loop go out together,
        in one system call, right after it (``flush``), or at once past ``write_limit``."""
        if self.protocol.state is not State.OPEN or self.paused or self.send_in_progress or self.transport.is_closing():
            return False
        data = frame.encode()
        self.protocol.send_text(data)  # into the protocol's buffer, which any send_data() writes, in order
        self.unflushed += len(data)
        if self.unflushed > self.write_limit_high:
            self.flush()  # the transport pauses if the client is behind: the next frames go to the queue
        elif self.flush_handle is None:
            self.flush_handle = self.loop.call_soon(self.flush)
        return True

    def flush(self) -> None:
        self.flush_handle, self.unflushed = None, 0
        self.send_data()

    def send_data(self) -> None:
        """What the protocol holds, in one system call: the library makes one per frame (a speed-up; no test).

        The library runs it after every read, and a member's frames of a turn went out one by one when its client
        sent something first (2.7 deliveries per system call in a room of 50; 16 in chapter 1)."""
        frames: list[bytes] = []
        for data in self.protocol.data_to_send():
            if data:
                frames.append(data)
                continue
            self.transport.write(b"".join(frames))  # then the end of the stream (an empty chunk): as the library
            frames = []
            if self.transport.can_write_eof():
                with contextlib.suppress(Exception):  # the library's: write_eof() doesn't say what it raises
                    self.transport.write_eof()
            else:
                self.transport.close()
        if frames:
            self.transport.write(b"".join(frames))

    def close_slow_consumer(self) -> None:
        self.protocol.fail(SLOW_CONSUMER.code, SLOW_CONSUMER.reason)  # the close frame if none went yet; then
        self.send_data()  # nothing more is parsed. Behind what the client has not read: it sees it if it reads
        self.transport.pause_reading()
        if self.close_timeout is not None:
            if self.close_deadline is None:
                self.close_deadline = self.loop.time() + self.close_timeout
            self.abort_at(self.close_deadline)
        if self.on_slow_consumer is not None:
            self.on_slow_consumer()  # the session ends at once: its leave is announced (SPEC.md §13.4)

    def data_received(self, data: bytes) -> None:
        """Parse a read 16 KiB at a time, and abort at the close deadline: see test_ping_flood, test_close_while_*.

        The library parses a read whole: a 256 KiB read of 6-byte pings is 40,000 frames parsed at once, megabytes
        of pongs, and a flood of them is noticed (``process_event``) only after each read is done
        (tests/test_19_load.py::test_ping_flood, empty pings: 13 MB more). And once a close frame has come or gone,
        the library sets a close deadline that only ``send()`` and ``close()`` keep, so a client that closes and
        reads nothing would stay in its room until the heartbeat timeout
        (tests/test_15_robustness.py::test_close_while_behind_on_reading, test_close_while_frames_are_on_their_way).
        """
        for start in range(0, len(data), READ_CHUNK):
            if self.transport.is_closing():
                return
            super().data_received(data[start : start + READ_CHUNK])
        if self.close_deadline is not None:  # a close is under way
            self.abort_at(self.close_deadline)

    def eof_received(self) -> None:
        """Abort ``close_timeout`` after a TCP half-close: the library waits for ever (03_websockets/test_server.py).

        A client that half-closes while data waits for it, and reads nothing more, would stay in its room until the
        heartbeat timeout (SPEC.md §10). No conformance test half-closes; the chapter's own
        test_server.py::test_half_close_while_behind_on_reading fails without it."""
        super().eof_received()
        if self.close_timeout is not None:
            self.abort_at(self.loop.time() + self.close_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        """The library's, and the abort timer cancelled: a closed connection keeps no timer (no test fails without)."""
        super().connection_lost(exc)
        if self.abort_timer is not None:
            self.abort_timer.cancel()

    def abort_at(self, deadline: float) -> None:
        if self.abort_timer is None:
            self.abort_timer = self.loop.call_at(deadline, self.transport.abort)


async def receive(websocket: ServerConnection) -> str | bytes:
    """The next message, like ``recv()`` but however many fragments it comes in. ``recv()`` closes with 1009 a
    message of more than 4096 fragments (WEBSOCKETS_MAX_FRAGMENTS), however small; ``max_size`` already bounds
    its bytes (SPEC.md §13.1), and empty fragments are not kept (tests/test_13_limits.py::test_fragmented_message)."""
    parts: list[str | bytes] = []
    async for part in websocket.recv_streaming():
        if part or not parts:  # the first part, even empty, tells text from binary
            parts.append(part)
    return parts[0][:0].join(parts)  # type: ignore[arg-type]


def close_code(closed: ConnectionClosed) -> int | None:
    """The code that ended the connection: the library's own when it closed first (1009, 1007 or 1002 for a
    frame it refused), otherwise the client's, or None when the TCP connection ended without a close frame."""
    if closed.sent is not None and not closed.rcvd_then_sent:
        return closed.sent.code
    return closed.rcvd.code if closed.rcvd is not None else None


async def abort_if_data_followed(websocket: ServerConnection) -> bool:
    """For ``process_response``: abort the connection if bytes came right behind the request, and say so.

    The library takes them (a pipelined second request, or junk) for WebSocket frames, refuses them and ends the
    connection, then fails with a traceback on sending the response (tests/test_15_robustness.py::
    test_bytes_after_a_request). Once the connection is aborted, the library sends nothing."""
    if not websocket.protocol.eof_sent:
        return False
    websocket.transport.abort()
    await websocket.wait_closed()
    return True
