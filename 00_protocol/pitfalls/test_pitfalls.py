"""Every pitfall of README.md, shown failing on the naive code and handled by each chapter, over real sockets."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import psutil
import pytest
from members import WAIT, Member, Target, join, upgrade
from websockets.exceptions import ConnectionClosed

from conftest import CHAPTERS, HERE, NAIVE, Servers, start_all, stop_all
from tests.client import handshake_status
from tests.harness import Server, ServerProcess
from tests.redis_server import RedisServer

pytestmark = pytest.mark.timeout(60)
BIG = 2000  # characters in a message: the most a chapter takes (SPEC.md §5), to fill buffers fast
FILL = 3000  # at most this many big messages (6 MB) to fill a stalled member's buffers
BATCH = 50  # messages sent before looking at what the watcher got
STALL = 2.0  # seconds a stalled member stays stalled while the others wait
GONE = 3.0  # seconds: twice a chapter's heartbeat timeout here (conftest.SETTINGS)
HUGE = 4 * 2**20  # characters in a message nobody needs
QUERY = 0.3  # seconds a slow query blocks (the galleries' QUERY_SECONDS)
EVIL = "https://evil.example"
CLIENTS = 20  # browsers of pitfall 10
# What closes a silent connection on the naive servers: the frameworks' own WebSocket pings, by default.
PINGS = {
    "naive FastAPI": "uvicorn's ping would close it (20 s + 20 s timeout)",
    "naive Channels": "daphne's ping would close it (20 s + 30 s timeout)",
    "naive websockets": "the library's ping would close it (20 s + 20 s timeout)",
}
LATE = 0.5  # seconds: a message this late to a member who reads is stuck behind someone else


def room() -> str:
    return f"r{uuid.uuid4().hex[:12]}"


def big(n: int) -> str:
    return f"{n:04}".ljust(BIG, "x")


@dataclass
class Filled:
    """What ``fill()`` saw: the first message the watcher did not get in time (None: it got them all), when
    each message was sent, and the longest the watcher waited for one."""

    stuck: int | None
    sent: dict[int, float]
    worst: float


async def fill(sender: Member, watcher: Member) -> Filled:
    """Send big messages, a batch at a time, until ``watcher`` stops getting them in time (it is stuck behind a
    stalled member), or FILL of them."""
    sent: dict[int, float] = {}
    worst = 0.0
    for first in range(0, FILL, BATCH):
        for n in range(first, first + BATCH):
            sent[n] = await sender.say(big(n))
        last = first + BATCH - 1
        if (arrived := await watcher.hears(big(last), LATE)) is None:
            stuck = next(n for n in range(first, first + BATCH) if big(n) not in watcher.heard)
            return Filled(stuck, sent, worst)
        worst = max(worst, arrived - sent[last])
    return Filled(None, sent, worst)


async def logged(server: Server, text: str) -> bool:
    """Whether the server writes ``text`` to its log within WAIT seconds."""
    deadline = time.monotonic() + WAIT
    while text not in server.log():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)  # ok-sleep: poll interval while waiting for the log, bounded by the deadline
    return True


async def barrier(target: Target) -> None:
    """Return once the server has handled everything sent to it so far: a few round trips in a room of their
    own go through the server's event loop after the frames and closes that were already there."""
    probe = await join(target, room(), "probe")
    for n in range(3):
        await probe.say(f"probe {n}")
        assert await probe.hears(f"probe {n}") is not None, f"{target.label} did not answer the probe"
    await probe.close()


@pytest.mark.pitfall(1)
@pytest.mark.parametrize(
    "label", ["naive FastAPI", "websockets, send loop", "naive websockets", "naive Channels", *CHAPTERS]
)
async def test_broadcast_while_members_leave(servers: Servers, label: str, record: dict[str, str]) -> None:
    """A member leaves while the sender's loop over the room waits for a slow member: who gets the message?"""
    target = servers.target(label)
    here = room()
    alice, bob, slow, carol = [await join(target, here, name) for name in ("alice", "bob", "slow", "carol")]
    slow.stall()
    stuck = (await fill(alice, carol)).stuck  # a loop over the room waits at slow, past bob, before carol
    await bob.close()
    await barrier(target)  # the server has seen bob leave (and removed him from the room, if it does that)
    slow.resume()
    with contextlib.suppress(ConnectionClosed):
        await alice.say("after")
    missed = stuck is not None and await carol.hears(big(stuck), 2.0) is None
    alice_closed = await alice.close_code() if await alice.hears("after") is None else None
    if label == "naive FastAPI":
        # The list shrank under the loop: it went on at the index after slow's, past the end. Carol was skipped.
        assert (stuck is not None, missed, alice_closed) == (True, True, None)
        record[label] = f"carol never got message {stuck}: bob left mid-loop, the list shifted, the loop skipped her"
    elif label == "websockets, send loop":
        # The set changed under the loop: the next step raised, and alice's handler died with it.
        assert (stuck is not None, missed, alice_closed) == (True, True, 1011)
        assert await logged(target.server, "RuntimeError: Set changed size during iteration")
        record[label] = "RuntimeError: Set changed size during iteration; alice closed with 1011, carol missed it"
    else:
        assert (stuck, missed, alice_closed) == (None, False, None), "nothing may go missing here"
        if target.naive:
            how = "broadcast() has no await in its loop" if "websockets" in label else "a channel per consumer"
            record[label] = f"nobody missed anything: {how}"
        else:
            assert await slow.close_code() == 4001
            record[label] = "nobody missed anything; slow closed with 4001 (SPEC.md §13.4)"
    for member in (alice, slow, carol):
        await member.close()


@pytest.mark.pitfall(2)
@pytest.mark.parametrize(
    "label", ["naive FastAPI", "websockets, send loop", "naive websockets", "naive Channels", *CHAPTERS]
)
async def test_one_slow_reader_stalls_the_room(servers: Servers, label: str, record: dict[str, str]) -> None:
    """One member stops reading: how long do the others wait for their messages?"""
    target = servers.target(label)
    here = room()
    alice, slow, carol = [await join(target, here, name) for name in ("alice", "slow", "carol")]
    assert isinstance(target.server, ServerProcess) and target.server.process is not None
    process = psutil.Process(target.server.process.pid)
    rss = process.memory_info().rss
    slow.stall()
    filled = await fill(alice, carol)
    grown = (process.memory_info().rss - rss) / 2**20
    if label in ("naive FastAPI", "websockets, send loop"):
        assert filled.stuck is not None, "the room should freeze behind slow"
        assert await carol.hears(big(filled.stuck), STALL) is None  # frozen, for as long as slow doesn't read
        slow.resume()
        arrived = await carol.hears(big(filled.stuck))
        assert arrived is not None
        waited = arrived - filled.sent[filled.stuck]
        record[label] = f"the room froze: carol waited {waited:.1f} s for message {filled.stuck}, until slow read"
    else:
        assert filled.stuck is None, "carol should get every message in time"
        worst = f"carol got all {FILL} messages, the latest after {filled.worst * 1000:.0f} ms"
        if target.naive:
            record[label] = f"{worst}; the server held slow's backlog (RSS +{grown:.0f} MiB)"
        else:
            slow.resume()
            assert await slow.close_code() == 4001
            record[label] = f"{worst}; slow closed with 4001 (SPEC.md §13.4)"
    for member in (alice, slow, carol):
        await member.close()


@pytest.mark.pitfall(3)
@pytest.mark.parametrize("label", ["Django under WSGI", *CHAPTERS])
async def test_a_wsgi_server(servers: Servers, label: str, record: dict[str, str]) -> None:
    """The browser's upgrade request reaches a WSGI server: what does it answer?"""
    (server,) = servers.get(label)
    async with httpx2.AsyncClient() as http:
        page = (await http.get(f"{server.url}/")).status_code
        token = (await http.get(f"{server.url}/api/token", params={"user": "alice"})).json()["token"]
    answer = await upgrade(f"{server.ws_url}/ws/chat/{room()}?token={token}")
    if label == "Django under WSGI":
        assert (page, answer) == (200, "HTTP/1.0 404 Not Found")
        record[label] = "the page loads (200); the WebSocket gets HTTP/1.0 404: to WSGI it is a plain GET"
    else:
        assert (page, answer) == (200, "HTTP/1.1 101 Switching Protocols")
        record[label] = "101 Switching Protocols: an ASGI server hands the socket to the app"


@pytest.mark.pitfall(4)
@pytest.mark.parametrize(
    "label, path",
    [
        ("FastAPI", "/no-accept/{room}"),
        ("FastAPI", "/send-before-accept/{room}"),
        ("Channels", "/no-accept/{room}/"),
        ("naive websockets", "/ws/{room}"),
        *[(chapter, "") for chapter in CHAPTERS],
    ],
)
async def test_forgetting_accept(servers: Servers, label: str, path: str, record: dict[str, str]) -> None:
    """A handler that reads, or sends, before it accepts the WebSocket: what does the browser get?"""
    (server,) = servers.get(label)
    start = time.monotonic()
    if path:
        answer = await upgrade(server.ws_url + path.format(room=room()))
    else:
        answer = await upgrade(f"{server.ws_url}/ws/chat/{room()}?token={await server.atoken('alice')}")
    took = time.monotonic() - start
    route = f"{label} {path.format(room='…')}".strip()
    if label == "FastAPI":
        assert answer == "HTTP/1.1 500 Internal Server Error"
        error = 'Need to call "accept" first' if "no-accept" in path else 'Expected ASGI message "websocket.accept"'
        assert await logged(server, error)
        record[route] = f"500 Internal Server Error, and a traceback: {error}"
    elif label == "Channels":
        assert answer == "reset without an answer" and took > 1
        record[route] = f"nothing for {took:.0f} s (daphne waits for accept), then the connection is reset"
    else:
        assert answer == "HTTP/1.1 101 Switching Protocols"
        record[route] = (
            "101: the library completes the handshake before the handler runs; nothing to forget"
            if target_is_naive(label)
            else "101 once the token, Origin and room are checked, else 403 (SPEC.md §4)"
        )


def target_is_naive(label: str) -> bool:
    return label not in CHAPTERS


@pytest.mark.pitfall(5)
@pytest.mark.parametrize(
    "label, path",
    [
        ("FastAPI", "/blocking/{room}"),
        ("FastAPI", "/blocking-fixed/{room}"),
        ("Channels", "/blocking/{room}/"),
        ("Channels", "/orm/{room}/"),
        ("Channels", "/orm-fixed/{room}/"),
        ("websockets", "/blocking/{room}"),
        ("websockets", "/blocking-fixed/{room}"),
        *[(chapter, None) for chapter in CHAPTERS],
    ],
)
async def test_blocking_the_event_loop(servers: Servers, label: str, path: str | None, record: dict[str, str]) -> None:
    """While one member's message is saved, how long does the server take to answer another member's ping?"""
    (server,) = servers.get(label)
    target = Target(label, server, path)
    saver = await join(target, room(), "saver")
    other = await join(target, room(), "other")
    sent = await saver.say("save me")
    worst = 0.0
    while time.monotonic() < sent + 2 * QUERY:  # pings, one after the other, while the message is saved
        start = time.monotonic()
        async with asyncio.timeout(WAIT):
            await (await other.ws.ping())
        worst = max(worst, time.monotonic() - start)
    arrived = await saver.hears("save me")
    code = await saver.close_code(0.5)
    route = f"{label} {path.format(room='…')}" if path else label
    if path is not None and "orm/" in path:
        assert (arrived, code) == (None, 1011) and await logged(server, "SynchronousOnlyOperation")
        record[route] = "Django refuses the ORM here: SynchronousOnlyOperation, the consumer dies (1011)"
    elif path is not None and "/blocking/" in path:
        assert arrived is not None and worst > 0.8 * QUERY
        record[route] = f"every connection froze: another member's ping waited {worst * 1000:.0f} ms"
    else:
        assert arrived is not None and worst < QUERY / 2
        how = "no blocking call; every I/O is awaited" if path is None else "in a thread"
        record[route] = f"{how}: another member's ping waited {worst * 1000:.0f} ms at most"


@pytest.mark.pitfall(6)
async def test_two_processes(servers: Servers, record: dict[str, str], tmp_path: Path) -> None:
    """Alice is served by one process, Bob by another: does Bob get Alice's message, in memory, then on Redis?"""
    redis = RedisServer(tmp_path)
    redis.start()
    labels = ["naive Channels", *CHAPTERS]
    shared = {"CHAT_REDIS_URL": redis.url}
    pairs = {label: [servers.process(label, env) for env in ({}, {}, shared, shared)] for label in labels}
    processes = [process for pair in pairs.values() for process in pair]
    try:
        start_all(processes)  # side by side: the start-up time of one
        for label, (memory, memory_too, on_redis, on_redis_too) in pairs.items():
            path = NAIVE[label][1] if label in NAIVE else None
            heard = []
            for first, second in ((memory, memory_too), (on_redis, on_redis_too)):
                here = room()
                alice = await join(Target(label, first, path), here, "alice")
                bob = await join(Target(label, second, path), here, "bob")
                await alice.say("hello bob")
                heard.append(await bob.hears("hello bob", 2.0) is not None)
                await alice.close()
                await bob.close()
            assert heard == [False, True], f"{label}: Bob heard Alice {heard} (in memory, on Redis)"
            layer, how = (
                ("an in-memory channel layer", "channels-redis's layer") if path else ("in memory", "CHAT_REDIS_URL")
            )
            record[label] = f"{layer}: Bob never hears Alice; with {how}: he does"
    finally:
        stop_all(processes)
        redis.kill()


@pytest.mark.pitfall(7)
@pytest.mark.parametrize("label", ["naive FastAPI", "naive Channels", "naive websockets", *CHAPTERS])
async def test_no_heartbeat(servers: Servers, label: str, record: dict[str, str]) -> None:
    """A member's network goes silent (no FIN, nothing read, nothing answered): does the server notice?"""
    target = servers.target(label)
    here = room()
    ghost = await join(target, here, "ghost")
    alice = await join(target, here, "alice")
    ghost.stall()
    left = await alice.frame(lambda f: f.get("type") == "presence.leave", GONE)  # a chapter's members are told
    ghost.resume()
    code = await ghost.close_code(0.5)
    if target.naive:
        assert (left, code) == (None, None)
        record[label] = f"still connected after {GONE:.0f} s; only {PINGS[label]}"
    else:
        assert left is not None and left["payload"]["user"] == "ghost" and code == 4000
        record[label] = "closed with 4000 after the heartbeat timeout; the room is told ghost left (SPEC.md §11)"


@pytest.mark.pitfall(8)
@pytest.mark.parametrize("label", ["naive FastAPI", "naive Channels", "naive websockets", *CHAPTERS])
async def test_no_size_limit(servers: Servers, label: str, record: dict[str, str]) -> None:
    """A member sends one 4 MiB message: does the server take it into memory and pass it on?"""
    target = servers.target(label)
    here = room()
    mallory = await join(target, here, "mallory")
    alice = await join(target, here, "alice")
    huge = "x" * HUGE
    with contextlib.suppress(ConnectionClosed, ConnectionResetError):
        await mallory.say(huge)
    code = await mallory.close_code(1.0)
    relayed = await alice.hears(huge, 3.0 if code is None else 0.5)
    if label == "naive FastAPI":
        assert (relayed is not None, code) == (True, None)
        record[label] = "took it, and sent 4 MiB to every member (uvicorn's ws_max_size: 16 MiB)"
    elif label == "naive Channels":
        assert (relayed, code) == (None, 1006)
        record[label] = "dropped the connection without a close frame (1006): daphne's 1 MiB default"
    else:
        assert (relayed, code) == (None, 1009)
        limit = "the library's max_size: 1 MiB" if target.naive else "CHAT_MAX_MESSAGE_BYTES, SPEC.md §13.1"
        record[label] = f"closed with 1009 ({limit})"


@pytest.mark.pitfall(9)
@pytest.mark.parametrize("label", ["naive FastAPI", "naive Channels", "naive websockets", *CHAPTERS])
async def test_no_handshake_checks(servers: Servers, label: str, record: dict[str, str]) -> None:
    """A page on another site opens a socket to the chat, without a token: can it read and post?"""
    target = servers.target(label)
    here = room()
    if target.naive:
        alice = await join(target, here, "alice")
        evil = await join(target, here, "evil", origin=EVIL)
        await evil.say("hello from evil.example")
        posted = await alice.hears("hello from evil.example")
        assert posted is not None
        record[label] = "101: a cross-site page without a token reads the room and posts to it"
    else:
        server = target.server
        no_token = await handshake_status(f"{server.ws_url}/ws/chat/{here}")
        token = await server.atoken("evil")
        cross_site = await handshake_status(f"{server.ws_url}/ws/chat/{here}?token={token}", origin=EVIL)
        assert (no_token, cross_site) == (403, 403)
        record[label] = "403 without a token, 403 from another site's Origin (SPEC.md §4): refused before any frame"


class Browsers:
    """reconnect.mjs under node: CLIENTS clients in one room, and every event they print."""

    def __init__(self, node: asyncio.subprocess.Process) -> None:
        self.node = node
        self.events: list[dict[str, Any]] = []
        self.changed = asyncio.Event()
        self.reader = asyncio.create_task(self.read())

    async def read(self) -> None:
        assert self.node.stdout is not None
        while line := await self.node.stdout.readline():
            self.events.append(json.loads(line))
            self.changed.set()
        self.changed.set()

    def count(self, event: str, client: int | None = None) -> int:
        return sum(1 for e in self.events if e["event"] == event and client in (None, e["client"]))

    async def until(self, done: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``done()`` or the deadline; say which."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while not done():
                    assert not self.reader.done(), f"node ended: {self.events[-3:]}"
                    self.changed.clear()
                    await self.changed.wait()
        return done()

    async def type(self) -> None:
        assert self.node.stdin is not None
        self.node.stdin.write(b"type\n")
        await self.node.stdin.drain()

    async def quit(self) -> None:
        assert self.node.stdin is not None
        self.node.stdin.write(b"quit\n")
        with contextlib.suppress(ConnectionError):
            await self.node.stdin.drain()
        async with asyncio.timeout(WAIT):
            await self.node.wait()
        await self.reader


@pytest.mark.pitfall(10)
@pytest.mark.parametrize("label", ["naive FastAPI", "chapter 1"])
async def test_reconnecting_clients(servers: Servers, label: str, record: dict[str, str]) -> None:
    """The server restarts under CLIENTS connected clients, whose users each type a message during the outage."""
    (server,) = start_all([servers.process(label)])  # a process of the test's own: it is killed
    kind, token = ("naive", "") if label in NAIVE else ("shared", await server.atoken("alice"))
    node = await asyncio.create_subprocess_exec(
        "node",
        "--experimental-websocket",
        str(HERE / "reconnect.mjs"),
        kind,
        server.ws_url,
        str(CLIENTS),
        token,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    browsers = Browsers(node)
    try:
        assert await browsers.until(lambda: browsers.count("open") == CLIENTS, WAIT), "the clients did not connect"
        server.kill()  # a crash, or a deploy: every connection ends at once
        assert await browsers.until(lambda: all(browsers.count("close", i) for i in range(CLIENTS)), WAIT)
        await browsers.type()  # each user types a line while the server is down
        await asyncio.to_thread(server.start)  # back, on the same port
        back = await browsers.until(lambda: browsers.count("open") == 2 * CLIENTS, 3 * WAIT)
        assert back, "the clients did not all come back"
        typed = {f"typed by {i}" for i in range(CLIENTS)}
        every = lambda: all(typed <= heard(browsers, i) for i in range(CLIENTS))  # noqa: E731
        delivered = await browsers.until(every, WAIT if kind == "shared" else 2.0)
    finally:
        await browsers.quit()
        server.stop()
    returns = sorted(e["at"] for e in browsers.events if e["event"] == "open")[CLIENTS:]
    spread = returns[-1] - returns[0]
    got = sum(len(typed & heard(browsers, i)) for i in range(CLIENTS))
    duplicates = sum(1 for e in browsers.events if e["event"] == "message") - got
    if kind == "naive":
        assert (delivered, got, spread < 100) == (False, 0, True)
        record[label] = (
            f"lost all {CLIENTS} lines typed during the outage; the {CLIENTS} clients came back within {spread:.0f} ms"
            " of each other (naive-client.js)"
        )
    else:
        assert (delivered, got, duplicates, spread > 250) == (True, CLIENTS * CLIENTS, 0, True)
        record[label] = (
            f"the shared client: every line typed during the outage delivered to all, once; the {CLIENTS} clients"
            f" came back over {spread:.0f} ms (full jitter)"
        )


def heard(browsers: Browsers, client: int) -> set[str]:
    return {e["text"] for e in browsers.events if e["event"] == "message" and e["client"] == client}
