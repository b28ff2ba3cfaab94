"""SPEC.md §19: under load and from hostile clients. `make test` runs each scenario small; `make stress` (pytest's
``--stress``) at the sizes §19 names."""

from __future__ import annotations

import asyncio
import contextlib
import time

import httpx2
import psutil
import pytest

from chatcore.limits import HEAD_TIMEOUT
from tests.client import TIMEOUT, Client, open_client
from tests.conftest import MakeServer
from tests.crowd import allow_descriptors, close_all, crowd, mint, say_at_once
from tests.harness import FAST, ServerProcess

ATTACK_RECOVERY = 15.0  # seconds after an attack starts by which a server answers again (SPEC.md §19.2)


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
    server = make_server(FAST, fresh=True)
    users = [f"user{n}" for n in range(count)]
    rooms = [room] * count if together else [f"{room}-{n}" for n in range(count)]
    clients = await crowd(server, rooms, users)
    try:
        say_at_once(clients, [f"{user}-m" for user in users])
        expected = count if together else 1

        async def read(client: Client) -> tuple[list[int], bool]:
            seqs: list[int] = []
            acked = False
            while len(seqs) < expected or not acked:
                frame = await client.recv(timeout=30)
                if frame["type"] == "chat.message":
                    seqs.append(frame["seq"])
                elif frame["type"] == "ack":
                    acked = True
                else:
                    assert frame["type"].startswith("presence."), frame
            return seqs, acked

        results = await asyncio.wait_for(asyncio.gather(*[read(client) for client in clients]), 120)
        assert all(seqs == list(range(1, expected + 1)) for seqs, _ in results)
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
        # Those accepted first were closed 10 s after; the others, 10 s after they were accepted.
        ends = [asyncio.ensure_future(closed_by_server(reader)) for reader, _ in attack]
        await asyncio.wait(ends, timeout=2 * HEAD_TIMEOUT + TIMEOUT - (time.monotonic() - started))
        assert all(end.done() for end in ends), f"{sum(not end.done() for end in ends)} half-sent handshakes still open"
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
