"""People in a room, the same to the tests whether the server is a naive one or a chapter."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State
from websockets.typing import Origin

from tests.client import open_client
from tests.harness import Server

WAIT = 5.0  # the longest any test waits for a frame it expects
KEEPALIVE = 0.5  # seconds between a stalled member's pongs: the chapters' heartbeat interval here (SETTINGS)


@dataclass(frozen=True)
class Target:
    """A server and how to speak to it: a naive server's path (``{room}`` in it) and its frames
    ``{"message": text}``, or a chapter's protocol (SPEC.md) when ``path`` is None."""

    label: str
    server: Server
    path: str | None = None

    @property
    def naive(self) -> bool:
        return self.path is not None


class Member:
    """One connection in a room. A task reads every frame as it comes (and answers a chapter's pings), unless
    the member ``stall()``s: then nothing reads its socket, as when a tab is too busy to read or a phone goes into
    a tunnel, and the server's writes to it pile up, first in the kernel's buffers, then in the server."""

    def __init__(self, ws: ClientConnection, target: Target) -> None:
        self.ws = ws
        self.target = target
        self.heard: dict[str, float] = {}  # text -> when it arrived (time.monotonic())
        self.frames: list[dict[str, Any]] = []  # every frame, in order
        self.arrived = asyncio.Event()
        self.reader: asyncio.Task[None] | None = asyncio.create_task(self.read())
        self.keepalive: asyncio.Task[None] | None = None

    async def read(self) -> None:
        """Read every frame until the connection ends, then wake whoever waits."""
        try:
            await self.read_frames()
        finally:
            self.arrived.set()  # wakes hears(): nothing more will come

    async def read_frames(self) -> None:
        """Keep every frame, and the time each text arrived; answer a chapter's pings."""
        with contextlib.suppress(ConnectionClosed):
            async for raw in self.ws:
                frame = json.loads(raw)
                self.frames.append(frame)
                if not self.target.naive and frame == {"type": "ping"}:
                    await self.ws.send('{"type": "pong"}')
                text = frame.get("message") if self.target.naive else frame.get("payload", {}).get("text")
                if isinstance(text, str):
                    self.heard[text] = time.monotonic()
                self.arrived.set()

    async def say(self, text: str) -> float:
        """Send a message; return when it was sent."""
        if self.target.naive:
            frame: dict[str, object] = {"message": text}
        else:
            frame = {"type": "chat.message", "id": uuid.uuid4().hex, "payload": {"text": text}}
        sent = time.monotonic()
        await self.ws.send(json.dumps(frame))
        return sent

    async def hears(self, text: str, timeout: float = WAIT) -> float | None:
        """When ``text`` arrived, waiting for it at most ``timeout`` seconds; None if it didn't, or if the
        connection closed first."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while text not in self.heard and self.ws.state is not State.CLOSED:
                    self.arrived.clear()
                    await self.arrived.wait()
        return self.heard.get(text)

    async def frame(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = WAIT) -> dict[str, Any] | None:
        """The first frame that matches, waiting for it at most ``timeout`` seconds; None if none came."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while not any(map(predicate, self.frames)) and self.ws.state is not State.CLOSED:
                    self.arrived.clear()
                    await self.arrived.wait()
        return next(filter(predicate, self.frames), None)

    def stall(self, *, silent: bool = False) -> None:
        """Stop reading the socket (the reader task ends). A slow member still sends a pong every KEEPALIVE
        seconds, as a busy tab's heartbeat does, so a chapter closes it as a slow consumer (4001, SPEC.md §13.4),
        never for silence; a ``silent`` one sends nothing either, like a phone in a tunnel (4000, §11)."""
        assert self.reader is not None
        self.reader.cancel()
        self.reader = None
        self.ws.transport.pause_reading()
        if not silent and not self.target.naive:
            self.keepalive = asyncio.create_task(self.pong_every(KEEPALIVE))

    async def pong_every(self, interval: float) -> None:
        """Send a pong every ``interval`` seconds, until the connection ends or the member reads again."""
        with contextlib.suppress(ConnectionClosed):
            while True:
                await self.ws.send('{"type": "pong"}')
                await asyncio.sleep(interval)  # ok-sleep: the heartbeat's own period, not a wait for an event

    def resume(self) -> None:
        """Read again: first what piled up, then as it comes (and answer pings as they come)."""
        if self.keepalive is not None:
            self.keepalive.cancel()
            self.keepalive = None
        self.ws.transport.resume_reading()
        self.reader = asyncio.create_task(self.read())

    async def close_code(self, timeout: float = WAIT) -> int | None:
        """The code the server closes this connection with (1006: it ended without a close frame), as soon as it
        is known, or None if the connection is still open after ``timeout`` seconds. (A server may send its close
        frame and then wait for the end of the closing handshake: the code is known then already.)"""
        deadline = time.monotonic() + timeout
        while (received := self.ws.protocol.close_rcvd) is None and self.ws.state is not State.CLOSED:
            if time.monotonic() > deadline:
                return None
            await asyncio.sleep(0.02)  # ok-sleep: poll interval for the close frame, bounded by the deadline
        return 1006 if received is None else received.code

    async def hears_or_closed(self, text: str, timeout: float = WAIT) -> tuple[bool, int | None]:
        """Whether ``text`` arrives, or else the code the connection is closed with: the first of the two."""
        deadline = time.monotonic() + timeout
        while text not in self.heard:
            if (code := await self.close_code(0)) is not None or time.monotonic() > deadline:
                return False, code
            await asyncio.sleep(0.02)  # ok-sleep: poll interval, bounded by the deadline
        return True, None

    async def close(self) -> None:
        """Close the connection, unless it is closing already; a stalled member just drops it (it would not read
        the server's close frame)."""
        if self.keepalive is not None:
            self.keepalive.cancel()
        if self.ws.transport.is_closing():
            pass  # the server closed it, or the close started: the reader ends when the connection does
        elif self.reader is None:
            self.ws.transport.abort()
        else:
            await self.ws.close()
        if self.reader is not None:
            try:
                async with asyncio.timeout(WAIT):
                    await self.reader
            except TimeoutError:
                self.ws.transport.abort()


async def join(target: Target, room: str, user: str, *, origin: str | None = None) -> Member:
    """A member of ``room``: on a chapter, with a token and its welcome read."""
    if target.naive:
        assert target.path is not None
        url = target.server.ws_url + target.path.format(room=room)
        ws = await connect(
            url,
            origin=Origin(origin) if origin else None,
            compression=None,  # so that a big message is as big on the wire
            max_size=None,
            ping_interval=None,
            open_timeout=WAIT,
        )
    else:
        ws = (await open_client(target.server, room, user, origin=origin, compression=None, timeout=WAIT)).ws
    return Member(ws, target)


async def upgrade(url: str, *, timeout: float = 2 * WAIT) -> str:
    """Ask for a WebSocket as a browser does (the request of the primer, PRIMER.md); return the status line of
    the answer (``HTTP/1.1 101 Switching Protocols``), or how the server closed without one."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    try:
        async with asyncio.timeout(timeout):
            line = await reader.readline()
    except ConnectionResetError:
        return "reset without an answer"
    finally:
        writer.close()
    return line.decode().strip() or "closed without an answer"


class People:
    """``await people(target, room, "alice")``: a member who is gone after the test, whatever happened."""

    def __init__(self) -> None:
        self.members: list[Member] = []

    async def __call__(self, target: Target, room: str, user: str, *, origin: str | None = None) -> Member:
        self.members.append(await join(target, room, user, origin=origin))
        return self.members[-1]
