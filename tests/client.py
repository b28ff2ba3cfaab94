"""A test client for the chat protocol: one WebSocket each, every wait bounded by a deadline."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Literal
from urllib.parse import urlencode

import httpx2
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.frames import Close as WsClose
from websockets.typing import Origin

from tests.harness import Server

TIMEOUT = 5.0  # for any single frame the server owes us
CLOSE_TIMEOUT = 5.0  # SPEC.md §10: a client that closes but doesn't read may take this long to leave
Frame = dict[str, Any]
Pings = Literal["answer", "ignore", "return"]


def new_id() -> str:
    return uuid.uuid4().hex


def chat_url(server: Server, room: str, **query: str | int | None) -> str:
    params = {k: str(v) for k, v in query.items() if v is not None}
    return f"{server.ws_url}/ws/chat/{room}" + (f"?{urlencode(params)}" if params else "")


def message(text: str, msg_id: str | None = None) -> Frame:
    return {"type": "chat.message", "id": msg_id or new_id(), "payload": {"text": text}}


SYNC = "settled-"  # the id prefix of Client.settled()'s messages, which every client skips


def is_sync(frame: Frame) -> bool:
    msg_id = frame.get("id") if frame["type"] == "ack" else frame.get("payload", {}).get("id")
    return frame["type"] in ("ack", "chat.message") and str(msg_id).startswith(SYNC)


class Client:
    """One connection. ``pings``: answer server pings with pong and skip them (default), skip them
    without answering ("ignore"), or hand them to the test like any other frame ("return")."""

    def __init__(self, ws: ClientConnection, pings: Pings) -> None:
        self.ws = ws
        self.pings = pings
        self.welcome: Frame = {}
        self.cluster = False  # connected to one process of several (tests/cluster.py)

    @property
    def user(self) -> str:
        return str(self.welcome["payload"]["user"])

    async def send(self, frame: Frame | str | bytes) -> None:
        await self.ws.send(frame if isinstance(frame, str | bytes) else json.dumps(frame))

    async def say(self, text: str = "hello", msg_id: str | None = None) -> str:
        """Send a chat.message; return its id."""
        frame = message(text, msg_id)
        await self.send(frame)
        return str(frame["id"])

    async def recv(self, timeout: float = TIMEOUT, *, sync: bool = False) -> Frame:
        """The next frame; server pings as ``pings`` says; ``settled()``'s messages only when ``sync``."""
        deadline = time.monotonic() + timeout
        while True:
            # asyncio.timeout, not wait_for: on Python 3.11, wait_for can swallow a cancellation (gh-86296), and a
            # crowd's reader cancelled at its deadline would go on reading.
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                raw = await self.ws.recv()
            assert isinstance(raw, str), f"server sent a binary frame: {raw!r}"
            frame = json.loads(raw)
            assert isinstance(frame, dict) and isinstance(frame.get("type"), str), f"not a typed object: {raw}"
            if frame == {"type": "ping"} and self.pings != "return":
                if self.pings == "answer":
                    await self.send({"type": "pong"})
                continue
            if is_sync(frame) and not sync:
                continue
            return frame

    async def expect(self, kind: str, timeout: float = TIMEOUT) -> Frame:
        frame = await self.recv(timeout)
        assert frame["type"] == kind, f"expected {kind}, got {frame}"
        return frame

    async def until(
        self, predicate: Callable[[Frame], bool], timeout: float = TIMEOUT, *, sync: bool = False
    ) -> list[Frame]:
        """Every frame up to and including the first one that matches."""
        deadline = time.monotonic() + timeout
        frames: list[Frame] = []
        while True:
            frames.append(await self.recv(max(0.0, deadline - time.monotonic()), sync=sync))
            if predicate(frames[-1]):
                return frames

    async def barrier(self) -> list[Frame]:
        """Every frame the server queued for us before it answered our ping: proves nothing else came."""
        await self.send({"type": "ping"})
        return (await self.until(lambda f: f == {"type": "pong"}))[:-1]

    async def settled(self) -> list[Frame]:
        """Every frame we are owed for what happened in the room so far, then nothing else. On one process,
        ``barrier()``. On a cluster, other processes' frames travel through Redis and may still be on their
        way when our process answers a ping; so we send a message of our own (every client skips it), which
        reaches us after every message committed before it, and after every frame published before it."""
        if not self.cluster:
            return await self.barrier()
        sync = f"{SYNC}{new_id()}"
        await self.send(message(".", sync))
        frames = await self.until(lambda f: f["type"] == "chat.message" and f["payload"]["id"] == sync, sync=True)
        return [frame for frame in frames if not is_sync(frame)]

    async def drain(self) -> None:
        """Read and discard frames until cancelled (a client that keeps up but whose frames don't matter)."""
        with contextlib.suppress(ConnectionClosed):
            while True:
                await self.ws.recv()

    async def closed(self, timeout: float = TIMEOUT) -> tuple[int, str, list[Frame]]:
        """Wait for the server to close: (code, reason, frames received meanwhile). 1006: no close frame."""
        deadline = time.monotonic() + timeout
        frames: list[Frame] = []
        try:
            while True:
                frames.append(await self.recv(max(0.0, deadline - time.monotonic())))
        except ConnectionClosed as exc:
            if exc.rcvd is None:
                return 1006, "", frames
            return exc.rcvd.code, exc.rcvd.reason, frames

    async def close(self) -> None:
        await self.ws.close()

    def write_at_once(self, *frames: str | bytes | WsClose) -> None:
        """Put several frames (text, binary, close) on the wire in one write, as a fast client can."""
        protocol = self.ws.protocol
        for frame in frames:
            if isinstance(frame, str):
                protocol.send_text(frame.encode())
            elif isinstance(frame, bytes):
                protocol.send_binary(frame)
            else:
                protocol.send_close(frame.code, frame.reason)
        self.ws.transport.write(b"".join(protocol.data_to_send()))


async def open_client(
    server: Server,
    room: str,
    user: str = "alice",
    *,
    token: str | None = None,
    since: int | str | None = None,
    epoch: str | None = None,
    pings: Pings = "answer",
    headers: Mapping[str, str] | None = None,
    origin: str | None = None,
    auth: Literal["query", "cookie"] = "query",
    reading: bool = True,
    timeout: float = TIMEOUT,
    **options: Any,
) -> Client:
    """Connect and read the welcome (which must come first), each within ``timeout``. ``reading=False``: a client
    that stops reading after the welcome, with buffers so small that the server soon finds its socket full."""
    token = token or await server.atoken(user)
    query: dict[str, str | int | None] = {"since": since, "epoch": epoch}
    extra = dict(headers or {})
    if auth == "query":
        query["token"] = token
    else:
        extra["Cookie"] = f"chat_token={token}"
    options.setdefault("max_size", None)
    sock = None
    if not reading:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", server.port))
        options["max_queue"] = 1
    ws = await connect(
        chat_url(server, room, **query),
        additional_headers=extra,
        origin=Origin(origin) if origin else None,
        open_timeout=timeout,
        close_timeout=2,
        ping_interval=options.pop("ping_interval", None),
        sock=sock,
        **options,
    )
    client = Client(ws, pings)
    client.welcome = await client.expect("welcome", timeout)
    return client


async def handshake_status(url: str, *, headers: Mapping[str, str] | None = None, origin: str | None = None) -> int:
    """101 if the server accepted the WebSocket, else the HTTP status it refused it with."""
    try:
        async with connect(
            url, additional_headers=headers, origin=Origin(origin) if origin else None, open_timeout=TIMEOUT
        ):
            return 101
    except InvalidStatus as exc:
        return exc.response.status_code


async def metric(server: Server, name: str, labels: Mapping[str, str] | None = None) -> float:
    """The current value of one series of ``GET /metrics`` (0 when the series does not exist yet), added up
    over the server's processes."""
    from prometheus_client.parser import text_string_to_metric_families

    total = 0.0
    async with httpx2.AsyncClient() as http:
        for url in server.urls:
            text = (await http.get(f"{url}/metrics", timeout=TIMEOUT)).text
            for family in text_string_to_metric_families(text):
                for sample in family.samples:
                    if sample.name == name and all(sample.labels.get(k) == v for k, v in (labels or {}).items()):
                        total += float(sample.value)
    return total


async def wait_for_metric(
    server: Server, name: str, value: float, labels: Mapping[str, str] | None = None, timeout: float = TIMEOUT
) -> None:
    """Poll ``/metrics`` until the series has ``value``, or fail at the deadline."""
    deadline = time.monotonic() + timeout
    while (current := await metric(server, name, labels)) != value:
        assert time.monotonic() < deadline, f"{name}{labels or ''} is {current}, expected {value}"
        await asyncio.sleep(0.02)  # ok-sleep: poll interval, bounded by the deadline
