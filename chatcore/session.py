"""One client connection, from the welcome to the close: what each chapter's glue hands its socket to (SPEC.md §6-§14).

The hub (chatcore/hub.py) makes a session when the handshake is accepted; the chapter then calls::

    await session.run(read_frames(...), write_frames(...), partial(send_close, websocket))

``read_frames`` passes each text frame to ``session.receive`` and reports how the client went away;
``write_frames`` sends whatever ``session.next_frame`` returns; ``send_close`` sends a close frame. A chapter may
also give ``run`` a ``write_now``: it writes a frame at once if the socket takes it without waiting, so that a
frame for a connection with nothing queued skips the queue and the writer task (see ``Session.send``).
Everything else (seq, ack, history, presence, limits, heartbeat, leaving) is here and in the hub.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any

from chatcore.backend import BackendUnavailable, Snapshot
from chatcore.metrics import FANOUT_GAPS, MESSAGES_DELIVERED
from chatcore.presence import Announcement
from chatcore.protocol import (
    HEARTBEAT_TIMEOUT,
    INTERNAL_ERROR,
    PING_FRAME,
    PONG_FRAME,
    RATE_LIMITED,
    SLOW_CONSUMER,
    UNAVAILABLE,
    ChatMessage,
    Close,
    Ping,
    Pong,
    ProtocolError,
    closed_by_peer,
    error_frame,
    parse_client_frame,
    welcome_frame,
)
from chatcore.ratelimit import TokenBucket

if TYPE_CHECKING:
    from chatcore.hub import Hub

logger = logging.getLogger("chat")

# Limits
RATE_LIMIT_STRIKES = 50  # consecutive rate-limited frames before close 1008
# Timeouts
REORDER_WAIT = 0.05  # how long a gap in a connection's messages may wait for them before they are refilled
CLOSE_TIMEOUT = 5.0  # how long a server-side close may wait for the socket to accept the close frame


class Ended(Exception):
    """Raised by ``next_frame`` when the writer must send nothing more: the connection is closing (``Session.ended``
    says why)."""


class Session:
    """One client connection: its outbound queue, rate limit, heartbeat clock, and why it ended."""

    def __init__(self, hub: Hub, user: str, room: str, address: str = "") -> None:
        self.hub = hub
        self.user = user
        self.room = room
        self.address = address  # how a broker fan-out addresses this connection (chapter 2: its channel name)
        settings = hub.settings
        self.settings = settings
        loop = asyncio.get_running_loop()
        self.clock = loop.time
        # Frames to send, as (seq, frame): seq > 0 for chat.message frames, 0 for everything else. The outbox
        # also takes presence announcements, each one entry, however many frames it holds.
        self.backlog: deque[tuple[int, str]] = deque()  # welcome and replay (and an announcement): sent first
        self.ahead: dict[int, str] = {}  # seq -> chat.message frame, taken from the outbox past a gap
        self.outbox: asyncio.Queue[tuple[int, str] | Announcement] = asyncio.Queue(settings.send_queue)
        self.epoch = ""  # the room's epoch when this connection joined
        self.last_seq = 0  # the seq of the last chat.message handed to the socket
        self.queued_seq = 0  # the highest seq queued for it
        self.room_seq = 0  # the room's latest seq at the previous heartbeat (see catch_up)
        self.bucket = TokenBucket(settings.rate_limit, settings.rate_burst, self.clock)
        self.strikes = 0
        self.last_seen = self.clock()
        self.write_now: Callable[[str], bool] = never  # the glue's, from run(): writes a frame at once, if it can
        self.idle = False  # the writer waits for the outbox, with nothing queued or in hand
        self.ended: asyncio.Future[Close] = loop.create_future()  # set once: why the connection ends
        self.done: asyncio.Future[None] = loop.create_future()  # set when run() has finished, close frame sent

    def welcome(self, members: list[str], snapshot: Snapshot) -> None:
        """Queue the welcome and the replay (SPEC.md §6, §9): from ``snapshot`` on, this connection follows its room.

        Live messages up to the snapshot's seq were either replayed or predate the welcome; a fan-out may have
        queued some already (the hub subscribes first)."""
        welcome = welcome_frame(
            user=self.user,
            room=self.room,
            members=members,
            seq=snapshot.seq,
            epoch=snapshot.epoch,
            resumed=snapshot.resumed,
            heartbeat=self.settings.heartbeat_interval,
        )
        self.backlog.append((0, welcome))
        self.backlog.extend((message.seq, message.frame) for message in snapshot.messages)
        self.epoch = snapshot.epoch
        self.last_seq = snapshot.messages[0].seq - 1 if snapshot.messages else snapshot.seq
        self.queued_seq = max(self.queued_seq, snapshot.seq)
        self.room_seq = snapshot.seq

    # Outbound

    def send(self, frame: str, seq: int = 0) -> None:
        """Queue a frame for the writer. A full queue means the client is not reading: close it with 4001.

        When nothing is queued and the frame is the next one to go (not a chat.message past a gap), it is written
        at once, if the socket takes it without waiting: most frames never wait, and waking a writer task for each
        one would cost more than writing it (01_fastapi/README.md, "Why frames skip the queue")."""
        if (
            self.idle
            and self.outbox.empty()
            and (not seq or seq == self.last_seq + 1)
            and not self.ended.done()
            and self.write_now(frame)
        ):
            if seq:
                self.last_seq = seq
                MESSAGES_DELIVERED.inc()
        elif not self._queue((seq, frame)):
            return
        self.queued_seq = max(self.queued_seq, seq)

    def announce(self, announcement: Announcement) -> None:
        """Queue presence changes (SPEC.md §10): those about other users than this connection's."""
        self._queue(announcement)

    def _queue(self, item: tuple[int, str] | Announcement) -> bool:
        if self.ended.done():
            return False
        try:
            self.outbox.put_nowait(item)
        except asyncio.QueueFull:
            self.close(SLOW_CONSUMER)
            return False
        return True

    async def next_frame(self) -> str:
        """The next frame to write to the socket, in protocol order: each chat.message once, without a gap. Raises
        ``Ended`` when nothing more may be sent (a gap that history can't fill): the writer lets it end it."""
        while True:
            item: tuple[int, str] | Announcement
            if self.backlog:
                item = self.backlog.popleft()
            elif self.ahead:  # a gap: wait a little for the messages in between, then take them from history
                try:
                    if len(self.ahead) >= self.settings.send_queue:
                        raise TimeoutError  # a busy room: what is missing would only fall further behind
                    async with asyncio.timeout(REORDER_WAIT):
                        item = await self.outbox.get()
                except TimeoutError:
                    await self.refill()  # the fan-out lost them
                    continue
            else:
                self.idle = True  # send() may write to the socket meanwhile: there is nothing to overtake
                try:
                    item = await self.outbox.get()
                finally:
                    self.idle = False
            if isinstance(item, Announcement):  # the backlog is empty: its frames go next
                self.backlog.extend((0, frame) for user, frame in item.changes if user != self.user)
                continue
            seq, frame = item
            if seq:
                if seq <= self.last_seq:
                    # Already sent: the replay and the live stream overlap (see welcome), or it was refilled.
                    continue
                if seq > self.last_seq + 1:
                    # Those in between may still be on their way: two processes' fan-outs (chapter 2's layer)
                    # can deliver their messages crossed. This one waits for them, out of the queue.
                    self.ahead[seq] = frame
                    continue
                self.last_seq = seq
                MESSAGES_DELIVERED.inc()
                following = self.ahead.pop(seq + 1, None) if self.ahead else None
                if following is not None:
                    self.backlog.appendleft((seq + 1, following))
            return frame

    async def refill(self) -> None:
        """Put every message after the last one sent, from history, in front of the queue (SPEC.md §7)."""
        FANOUT_GAPS.inc()
        try:
            snapshot = await self.hub.backend.snapshot(self.room, self.last_seq, self.epoch)
        except BackendUnavailable as exc:
            self.unavailable(exc)
            raise Ended from None
        if self.history_lost(snapshot, self.last_seq):  # the writer's own: it did not change meanwhile
            self.close(UNAVAILABLE)
            raise Ended
        if not snapshot.resumed:
            # They have left history: this connection fell too far behind. Send nothing past the gap; the
            # client resumes with since= and is told (resumed: false) that it may have missed some (§13.4).
            self.close(SLOW_CONSUMER)
            raise Ended
        self.backlog.extendleft((message.seq, message.frame) for message in reversed(snapshot.messages))
        self.ahead.clear()  # all among the refilled: they were committed before the snapshot
        self.queued_seq = max(self.queued_seq, snapshot.seq)

    async def catch_up(self) -> None:
        """Once per heartbeat: renew the fan-out subscription, and queue messages that the fan-out lost and
        nothing later revealed. A lost message is noticed in next_frame when a later one arrives; a lost last
        one only here, at the second ping after it was committed (the room's seq at one ping is checked
        against what was queued by the next)."""
        # Messages go out while the snapshots are on their way: compare with what was sent before they were asked
        # for, all committed by then (the room's seq can't be lower, unless the backend lost it).
        sent = self.last_seq
        try:
            await self.hub.fanout.subscribe(self)
            room = await self.hub.backend.snapshot(self.room, None, None)
            missed, queued, self.room_seq = self.room_seq > self.queued_seq, self.queued_seq, room.seq
            snapshot = await self.hub.backend.snapshot(self.room, queued, self.epoch) if missed else room
        except BackendUnavailable as exc:
            self.unavailable(exc)
            return
        if self.history_lost(room, sent):
            self.close(UNAVAILABLE)
            return
        if not missed:
            return
        FANOUT_GAPS.inc()
        if not snapshot.resumed:
            self.close(SLOW_CONSUMER)  # as in refill()
            return
        for message in snapshot.messages:
            if message.seq > self.queued_seq:
                self.send(message.frame, message.seq)

    # Inbound

    async def receive(self, text: str) -> None:
        """Handle one text frame from the client."""
        await self._handle(text)
        # Then let the writers run: a server can hand us a whole TCP read of frames at once, and the send
        # queues must measure whether clients read, not how we schedule.
        await asyncio.sleep(0)

    async def _handle(self, text: str) -> None:
        self.last_seen = self.clock()
        try:
            frame = parse_client_frame(text)
        except ProtocolError as exc:
            if self._within_rate(exc.id):
                self.send(error_frame(code=exc.code, detail=exc.detail, id=exc.id))
            return
        if isinstance(frame, Pong):
            return  # answers our ping; last_seen is all it changes
        if not self._within_rate(frame.id if isinstance(frame, ChatMessage) else None):
            return
        if isinstance(frame, Ping):
            self.send(PONG_FRAME)
            return
        try:
            await self.hub.publish(self, frame)
        except BackendUnavailable as exc:
            self.unavailable(exc)  # not acknowledged: the client resends it with the same id once reconnected

    def _within_rate(self, msg_id: str | None) -> bool:
        if self.bucket.take():
            self.strikes = 0
            return True
        self.strikes += 1
        if self.strikes >= RATE_LIMIT_STRIKES:
            self.close(RATE_LIMITED)
        else:
            detail = f"More than {self.settings.rate_limit:g} frames/s: this frame was dropped, slow down."
            self.send(error_frame(code="rate_limited", detail=detail, id=msg_id))
        return False

    async def heartbeat(self) -> None:
        """Send a ping every interval; close with 4000 when the client has been silent too long."""
        interval, timeout = self.settings.heartbeat_interval, self.settings.heartbeat_timeout
        next_ping = self.clock() + interval
        while True:
            now = self.clock()
            deadline = self.last_seen + timeout
            if now >= deadline:
                self.close(HEARTBEAT_TIMEOUT)
                return
            if now >= next_ping:
                self.send(PING_FRAME)
                next_ping = now + interval
                await self.catch_up()
            await asyncio.sleep(max(0.0, min(next_ping, deadline) - self.clock()))

    # Lifecycle

    def close(self, close: Close) -> None:
        """End the connection for this reason (the first one given wins)."""
        if not self.ended.done():
            self.ended.set_result(close)

    def unavailable(self, problem: BackendUnavailable) -> None:
        """Close with 1013: the backend is down (SPEC.md §17)."""
        logger.warning("Closing %r in %r: %s", self.user, self.room, problem)
        self.close(UNAVAILABLE)

    def history_lost(self, room: Snapshot, sent: int) -> bool:
        """Whether the backend lost the room's history (a new epoch) or its latest messages (its seq is below
        ``sent``, the last seq sent before the snapshot was asked for): then the connection is closed with 1013,
        and its client resumes and is told so (SPEC.md §17, §9)."""
        if room.epoch == self.epoch and room.seq >= sent:
            return False
        logger.warning("Closing %r in %r: the room's history was reset (epoch %s)", self.user, self.room, room.epoch)
        return True

    async def run(
        self,
        reader: Coroutine[Any, Any, None],
        writer: Coroutine[Any, Any, None],
        send_close: Callable[[Close], Awaitable[None]],
        write_now: Callable[[str], bool] | None = None,
    ) -> Close:
        """Serve the connection until it ends, then leave the room and, unless the client ended it,
        send the close frame. Returns why it ended.

        The glue's ``reader`` runs until the client goes away and then calls ``close(closed_by_peer(code))``;
        its ``writer`` runs until cancelled (when it can no longer write, it waits: the reader says why), or until
        ``next_frame`` raises ``Ended``, which it lets through.
        ``write_now(frame)`` writes a frame and returns True if the socket takes it without waiting (open, its
        write buffer below the high-water mark); otherwise it returns False, and the frame goes to the writer.
        """
        if write_now is not None:
            self.write_now = write_now
        closing: asyncio.Task[None] | None = None
        try:
            try:
                await self._serve(reader, writer)
            finally:
                self.close(closed_by_peer(None))  # no-op if the reason is known
                close = self.ended.result()
                if close.send:  # the close frame and the leave together: neither waits for the other
                    closing = asyncio.create_task(self._send_close(send_close, close))
                await self.hub.disconnect(self)  # announce the leave at once, even if we are cancelled
            if closing is not None:
                await closing
            return close
        finally:
            if closing is not None:
                closing.cancel()  # if we were cancelled
            self.done.set_result(None)

    @staticmethod
    async def _send_close(send_close: Callable[[Close], Awaitable[None]], close: Close) -> None:
        # Bounded: the close frame waits behind whatever a slow consumer has not read yet.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CLOSE_TIMEOUT):  # not wait_for: on Python 3.11 it can swallow a cancel
                await send_close(close)

    async def _serve(self, reader: Coroutine[Any, Any, None], writer: Coroutine[Any, Any, None]) -> None:
        tasks = [asyncio.create_task(reader), asyncio.create_task(writer), asyncio.create_task(self.heartbeat())]
        waiters: list[asyncio.Future[Any]] = [*tasks, self.ended]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            # asyncio.wait, not gather: if we are being cancelled ourselves, our own CancelledError must
            # propagate (gather would raise a child's instead, which anyio's cancel scopes don't recognise).
            await asyncio.wait(tasks)
        for task in tasks:
            error = None if task.cancelled() else task.exception()
            if error is not None and not isinstance(error, Ended):
                logger.error("Connection of %r to %r failed", self.user, self.room, exc_info=error)
                self.close(INTERNAL_ERROR)


# The ASGI extension (in the scope's "extensions") with which an app writes a text frame without waiting, if the
# connection takes it at once: {"write": write_now}. Chapter 1's uvicorn and chapter 2's daphne give it (their
# protocols' write_now); under another ASGI server, the app does without.
WRITE_NOW = "chat.write_now"


def find_write_now(scope: Mapping[str, Any]) -> Callable[[str], bool] | None:
    """The connection's ``write_now``, from an ASGI scope; None under a server without the extension."""
    write_now: Callable[[str], bool] | None = scope.get("extensions", {}).get(WRITE_NOW, {}).get("write")
    return write_now


def never(frame: str) -> bool:
    """A ``write_now`` that never writes: every frame goes through the outbox and the writer."""
    return False
