"""SPEC.md §19: under load and from hostile clients. `make test` runs each scenario small; `make stress` (pytest's
``--stress``) at the sizes §19 names."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable

import httpx2
import psutil
import pytest
import redis
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State
from websockets.uri import parse_uri

from chatcore.limits import HEAD_TIMEOUT
from tests.client import TIMEOUT, Client, chat_url, handshake_status, metric, open_client, wait_for_metric
from tests.cluster import Cluster
from tests.conftest import MakeServer
from tests.crowd import allow_descriptors, close_all, crowd, mint, say_at_once
from tests.harness import FAST, Server, ServerProcess

ATTACK_RECOVERY = 15.0  # seconds after an attack starts by which a server answers again (SPEC.md §19.2)
PRESENCE_BYTES = 100  # of presence frames per arrival, at most: a presence.join and its user's name, not a list


def scale(request: pytest.FixtureRequest, small: int, full: int) -> int:
    return full if request.config.getoption("--stress") else small


@pytest.mark.cluster(only=True)
@pytest.mark.parametrize("together", [False, True], ids=["a room each", "one room"])
async def test_burst_on_redis(
    make_server: MakeServer, request: pytest.FixtureRequest, room: str, together: bool
) -> None:
    """§19.1, §17: connected clients that all send a message at the same instant are all acked and get every message
    of their room in order; none is closed (no 1013: Redis up is never a reason to drop a client)."""
    count = scale(request, 300, 1000)
    # In one room, every member gets every message at once: a million frames for a thousand clients, which this
    # test's one process reads far slower than the servers send them (a minute and more). A queue and a history
    # that hold the whole burst, and a heartbeat that waits for clients done reading, keep them from being slow
    # consumers (§13.4, §7) or silent ones (§11): what is checked here is Redis, not the test's own speed.
    patient = {"CHAT_SEND_QUEUE": str(2 * count + 100), "CHAT_HISTORY_SIZE": str(2 * count)}
    patient["CHAT_HEARTBEAT_INTERVAL"] = "300"
    server = make_server({**FAST, **patient} if together else FAST, fresh=True)
    users = [f"user{n}" for n in range(count)]
    rooms = [room] * count if together else [f"{room}-{n}" for n in range(count)]
    clients = await crowd(server, rooms, users)
    try:
        say_at_once(clients, [f"{user}-m" for user in users])
        expected = count if together else 1

        async def read(client: Client) -> list[int]:
            """The seqs of the chat.messages the client gets, up to its ack and the room's last message: read
            straight from the socket (Client.recv's deadline per frame would cost more than a million frames allow)."""
            seqs: list[int] = []
            acked = False
            while len(seqs) < expected or not acked:
                frame = json.loads(await client.ws.recv())
                if frame["type"] == "chat.message":
                    seqs.append(frame["seq"])
                elif frame["type"] == "ack":
                    acked = True
                else:
                    assert frame["type"].startswith("presence.") or frame["type"] == "ping", frame
            return seqs

        started = time.monotonic()
        async with asyncio.timeout(scale(request, 30, 240)):
            results = await asyncio.gather(*[read(client) for client in clients])
        print(f"{count} clients read {count * expected} messages in {time.monotonic() - started:.1f} s")
        assert all(seqs == list(range(1, expected + 1)) for seqs in results)
    finally:
        await close_all(clients)


async def half_open(port: int, count: int) -> list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """``count`` connections that each send the first line of a WebSocket handshake, and nothing more."""
    allow_descriptors(count)

    async def one() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /ws/chat/lobby HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n")
        return reader, writer

    return await asyncio.gather(*[one() for _ in range(count)])


async def closed_by_server(reader: asyncio.StreamReader) -> bool:
    with contextlib.suppress(ConnectionError):
        await reader.read()
    return True


async def test_half_open_handshakes(make_server: MakeServer, request: pytest.FixtureRequest, room: str) -> None:
    """§19.2, §4.1: more half-sent handshakes than the process has descriptors don't take it down: each is closed
    10 s after it was accepted, /healthz answers again within 15 s and a new client can chat; the log grows by at
    most 1 MB; the server said at start-up what its descriptor limit is."""
    limit = scale(request, 256, 1024)
    server = make_server(descriptors=(limit, limit))
    assert isinstance(server, ServerProcess) and server.process is not None
    assert f"Open descriptors: the limit is {limit}" in server.log()
    log_size = server.log_size()
    token = mint(server, "alice")  # now: /api/token is out of reach during the attack
    attack = await half_open(server.port, limit + 76)
    started = time.monotonic()
    try:
        async with httpx2.AsyncClient() as http:
            while True:
                assert time.monotonic() - started < ATTACK_RECOVERY, f"/healthz unreachable for {ATTACK_RECOVERY} s"
                with contextlib.suppress(httpx2.HTTPError):
                    if (await http.get(f"{server.url}/healthz", timeout=1)).status_code == 200:
                        break
        alice = await open_client(server, room, "alice", token=token)
        await alice.say("still here", "m1")
        assert (await alice.until(lambda f: f["type"] == "chat.message"))[-1]["payload"]["text"] == "still here"
        await alice.close()
        # Those accepted first were closed 10 s after; the others, 10 s after they were accepted (test_04 checks
        # one; make stress waits for every one).
        ends = [asyncio.ensure_future(closed_by_server(reader)) for reader, _ in attack]
        if request.config.getoption("--stress"):
            await asyncio.wait(ends, timeout=2 * HEAD_TIMEOUT + TIMEOUT - (time.monotonic() - started))
            assert all(end.done() for end in ends), f"{sum(not e.done() for e in ends)} half-sent handshakes still open"
        else:  # the first ones are closed already: their ends only need to be read
            await asyncio.wait(ends, timeout=1.0)
            assert sum(end.done() for end in ends) >= limit - 100, "the first half-sent handshakes are still open"
        assert server.log_size() - log_size < 1_000_000
        assert server.healthy()
    finally:
        for _, writer in attack:
            writer.close()


def test_descriptor_limit_raised(make_server: MakeServer) -> None:
    """§19.2: at start-up the server raises its soft limit on open descriptors to the hard limit, and logs it."""
    server = make_server(descriptors=(256, 4096))
    assert isinstance(server, ServerProcess) and server.process is not None
    assert psutil.Process(server.process.pid).rlimit(psutil.RLIMIT_NOFILE) == (4096, 4096)
    assert "Open descriptors: raised the limit from 256 to 4096 (the hard limit)" in server.log()


@pytest.mark.cluster
async def test_room_fills_at_once(make_server: MakeServer, request: pytest.FixtureRequest, room: str) -> None:
    """§19.3, §10: a crowd joining one room at the same moment is welcomed in full, nobody is closed, and the presence
    traffic to each member grows with the crowd (a small frame per arrival), not with the crowd times the room
    (a member list per arrival); every member's list, the welcome's plus each join, ends up with the whole crowd."""
    count = scale(request, 200, 1000)
    # A client done with its list stops reading while the others go on (up to a minute for a thousand): a
    # heartbeat that waits for it keeps it from being closed as silent (§11), which would be a leave to all.
    server = make_server({**FAST, "CHAT_HEARTBEAT_INTERVAL": "300"}, fresh=True)
    users = [f"user{n}" for n in range(count)]
    clients = await crowd(server, [room] * count, users, at_once=True)
    try:

        async def listen(client: Client) -> int:
            """The bytes of presence frames it gets until its list is complete, then up to the pong that answers its
            ping: nothing else was on its way (a join it knew may come twice, §10). Read straight from the socket,
            as in test_burst_on_redis: a million frames in all."""
            members = set(client.welcome["payload"]["members"])
            size = 0
            pinged = False
            while True:
                if len(members) == count and not pinged:
                    await client.ws.send(json.dumps({"type": "ping"}))
                    pinged = True
                raw = await client.ws.recv()
                frame = json.loads(raw)
                if frame == {"type": "pong"} and pinged:
                    return size
                if frame == {"type": "ping"}:  # the server's heartbeat (§11)
                    await client.ws.send(json.dumps({"type": "pong"}))
                    continue
                assert frame["type"] == "presence.join", frame
                assert not pinged or frame["payload"]["user"] in members, frame
                members.add(frame["payload"]["user"])
                size += len(raw)

        async with asyncio.timeout(scale(request, 30, 120)):
            sizes = await asyncio.gather(*[listen(client) for client in clients])
        assert max(sizes) < PRESENCE_BYTES * count, f"{max(sizes)} bytes of presence for {count} arrivals"
    finally:
        await close_all(clients)


def processes(server: Server) -> list[psutil.Process]:
    members = server.members if isinstance(server, Cluster) else [server]
    return [psutil.Process(m.process.pid) for m in members if isinstance(m, ServerProcess) and m.process is not None]


def each_rss(server: Server) -> list[int]:
    return [process.memory_info().rss for process in processes(server)]


def rss(server: Server) -> int:
    return sum(each_rss(server))


def growth(server: Server, before: list[int]) -> int:
    """How much the process that grew most has grown since ``before`` (its ``each_rss``)."""
    return max(after - then for after, then in zip(each_rss(server), before, strict=True))


async def redis_usage(server: Server, expected: tuple[int, int] | None = None) -> tuple[int, int]:
    """Redis's pub/sub channels and keys, for a cluster (0, 0 without Redis): as soon as they are ``expected``, or
    else once they have settled (the same in five readings 0.1 s apart), within 10 s. A server unsubscribes the
    channels of the clients that left a little after they left: chapter 2's layer, for one, queues each
    UNSUBSCRIBE behind its receive task's poll."""
    if not isinstance(server, Cluster):
        return 0, 0
    readings: list[tuple[int, int]] = []
    deadline = time.monotonic() + 10
    with redis.Redis.from_url(server.redis.url) as client:
        while not readings or (readings[-1] != expected and (len(readings) < 5 or len(set(readings[-5:])) > 1)):
            if time.monotonic() > deadline:
                break
            if readings:
                await asyncio.sleep(0.1)  # ok-sleep: the interval between readings, bounded by the deadline
            readings.append((len(client.pubsub_channels()), int(client.dbsize())))
    return readings[-1]


async def ten_at_a_time(numbers: range, job: Callable[[int], Awaitable[None]]) -> None:
    """``job(n)`` for each of ``numbers``, ten under way at a time, all within 10 minutes."""
    allow_descriptors(20)
    pending = iter(numbers)

    async def worker() -> None:
        for n in pending:
            await job(n)

    async with asyncio.timeout(600):
        await asyncio.gather(*[worker() for _ in range(10)])


async def say_once(server: Server, room: str, user: str, msg_id: str) -> None:
    """Connect, say something, wait for the ack, close."""
    client = await open_client(server.for_client(), room, user, token=mint(server, user))
    await client.say("hi", msg_id)
    await client.until(lambda f: f["type"] == "ack")
    await client.close()


async def cycles(server: Server, room: str, numbers: range) -> None:
    """A connection for each of ``numbers`` that says something and closes, ten at a time; and a handshake
    refused (a bad token) for every second one."""

    async def cycle(n: int) -> None:
        await say_once(server, room, f"user{n % 50}", f"m{n}")
        if n % 2:
            assert await handshake_status(chat_url(server.for_client(), room, token="bad")) == 403

    await ten_at_a_time(numbers, cycle)
    await wait_for_metric(server, "chat_connections", 0)


async def warm_up(
    server: Server, job: Callable[[range], Awaitable[None]], *, batch: int = 1000, at_least: int = 2, at_most: int = 10
) -> tuple[int, int]:
    """``job`` over ``batch`` numbers per server process at a time (0, 1, 2, ...) until the server's memory has
    settled: ``at_least`` batches, then until one more batch adds less than 1 MB to each process, or ``at_most``
    batches in all. Returns the next number, and what the last batch added to the process that grew most.

    Chapter 2's connections end as reference cycles that only the garbage collector's full passes free: its
    memory climbs by steps to where it stays, after 2,000 to 6,000 connections per process here; with a room per
    connection, a step of a few MB may still come after 20,000 (02_channels/README.md)."""
    size = batch * len(processes(server))
    before = grown = None
    for first in range(0, at_most * size, size):
        await job(range(first, first + size))
        await wait_for_metric(server, "chat_connections", 0)
        if before is not None:
            grown = growth(server, before)
            if grown < 1_000_000:
                break
        before = each_rss(server) if first >= (at_least - 1) * size else None
    assert grown is not None, "at_most must be more than at_least"
    return first + size, grown


@pytest.mark.cluster
async def test_nothing_grows_per_connection(make_server: MakeServer, request: pytest.FixtureRequest, room: str) -> None:
    """§19.4: connections that come, chat and go (and refused handshakes) leave nothing behind: once the server has
    warmed up, each server process's memory stays within 5 MB, and Redis has the pub/sub channels and keys it had."""
    server = make_server(FAST, fresh=True)
    if request.config.getoption("--stress"):
        warm, _ = await warm_up(server, lambda numbers: cycles(server, room, numbers))
    else:
        warm = 1000
        await cycles(server, room, range(warm))
    count = scale(request, 500, 10_000)
    # Chapter 2's memory may still take a step of a few MB (02_channels/README.md): at make stress's size, a batch
    # that takes one is followed by another, three at most. A leak of 500 bytes a connection fails every one.
    for first in range(warm, warm + scale(request, 1, 3) * count, count):
        before, redis_before = each_rss(server), await redis_usage(server)
        await cycles(server, room, range(first, first + count))
        grown = growth(server, before)
        if grown < 5_000_000:
            break
    assert grown < 5_000_000, f"{grown / 1e6:.1f} MB more after {count} connections"
    assert await redis_usage(server, expected=redis_before) == redis_before


def pings(count: int, size: int) -> bytes:
    """``count`` masked ping frames with a ``size``-byte payload (<= 125), ready for the wire."""
    protocol = ClientProtocol(parse_uri("ws://127.0.0.1/"))
    protocol.state = State.OPEN
    protocol.send_ping(b"p" * size)
    return b"".join(protocol.data_to_send()) * count


@pytest.mark.parametrize("size", [0, 125], ids=["empty pings", "125-byte pings"])
async def test_ping_flood(make_server: MakeServer, request: pytest.FixtureRequest, room: str, size: int) -> None:
    """§19.5, §13.4: a client that floods WebSocket pings and reads nothing is closed with 4001 "slow consumer" once
    the pongs it has not read exceed the connection's send limit; the server's memory grows by at most 10 MB
    meanwhile, and is back after the close."""
    count = scale(request, 200_000, 1_000_000)
    server = make_server(fresh=True)
    slow = await metric(server, "chat_disconnects_total", {"reason": "slow_consumer"})
    before = peak = rss(server)
    client = await open_client(server, room, "flooder")
    client.ws.transport.pause_reading()
    chunk = pings(1000, size)
    stop = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, rss(server))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.05)

    sampler = asyncio.create_task(sample())
    try:
        deadline = time.monotonic() + 60
        for _ in range(count // 1000):  # as fast as the server reads them, until it stops reading
            while client.ws.transport.get_write_buffer_size() > 1_000_000:
                if client.ws.transport.is_closing() or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.01)  # ok-sleep: polls the client's own write buffer, bounded by the deadline
            else:
                client.ws.transport.write(chunk)
                continue
            break
        client.ws.transport.resume_reading()
        if size:  # 127-byte pongs: more than the socket buffers hold, so the server's would fill
            code, reason, _ = await client.closed(timeout=30)
            assert (code, reason) in {(4001, "slow consumer"), (1006, "")}  # 1006: it read too late (§13.4)
            await wait_for_metric(server, "chat_disconnects_total", slow + 1, {"reason": "slow_consumer"})
        else:  # 2-byte pongs: the socket buffers may hold them all; then it reads them, and goes on
            with contextlib.suppress(ConnectionClosed):
                await client.send({"type": "ping"})
                assert await client.until(lambda f: f == {"type": "pong"}, timeout=60) == [{"type": "pong"}]
            assert client.ws.close_code in {None, 4001, 1006}
    finally:
        stop.set()
        await sampler
    assert peak - before < 10_000_000, f"{(peak - before) / 1e6:.1f} MB more during the flood"
    assert rss(server) - before < 10_000_000


@pytest.mark.cluster
async def test_rooms_do_not_pile_up(make_server: MakeServer, request: pytest.FixtureRequest, room: str) -> None:
    """§19.6, §9, §13.6: one message into each of many rooms: once CHAT_MAX_ROOMS rooms are kept, the server's memory
    settles (10,000 more rooms per process add less than 1 MB); in Redis, each key a room leaves has a TTL."""
    cap = scale(request, 200, 1000)
    server = make_server({**FAST, "CHAT_MAX_ROOMS": str(cap)}, fresh=True)

    async def one_message_each(rooms: range) -> None:
        await ten_at_a_time(rooms, lambda n: say_once(server, f"{room}-{n}", "alice", "m1"))

    if request.config.getoption("--stress"):  # filled to the cap, then 10,000 rooms per process at a time
        count, grown = await warm_up(server, one_message_each, batch=10_000, at_least=1, at_most=8)
        assert grown < 1_000_000, f"still {grown / 1e6:.1f} MB more with each 10,000 rooms, after {count} rooms"
    else:  # filled to the cap; then the cap, seen from outside: the first room has forgotten its message
        count = cap + 500
        await one_message_each(range(count))
        await wait_for_metric(server, "chat_connections", 0)
        oldest = await open_client(server.for_client(), f"{room}-0", "alice", token=mint(server, "alice"), since=0)
        assert oldest.welcome["payload"]["seq"] == (1 if isinstance(server, Cluster) else 0)
        await oldest.close()
    if isinstance(server, Cluster):
        with redis.Redis.from_url(server.redis.url) as client:
            keys = client.keys("chat:*")
            assert len(keys) >= 3 * count
            # None without a TTL (-1). One may be gone since KEYS (-2): the room's presence, as the client that
            # opened the room again to check it leaves.
            assert all(client.pttl(key) != -1 for key in keys)
