"""SPEC.md §11: the application-level heartbeat and the 4000 close for silent clients."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import time

import pytest

from tests.client import chat_url, metric, wait_for_metric
from tests.conftest import Connector, MakeServer
from tests.harness import Server

INTERVAL, TIMEOUT = 0.2, 0.8
SHORT = {"CHAT_HEARTBEAT_INTERVAL": str(INTERVAL), "CHAT_HEARTBEAT_TIMEOUT": str(TIMEOUT)}


@pytest.fixture
def short(make_server: MakeServer) -> Server:
    return make_server(SHORT)


async def test_server_pings(short: Server, connect: Connector, room: str) -> None:
    """§11: the server sends {"type": "ping"} every CHAT_HEARTBEAT_INTERVAL seconds."""
    client = await connect(short, room, pings="return")
    assert client.welcome["payload"]["heartbeat"] == INTERVAL
    for _ in range(3):
        assert await client.recv() == {"type": "ping"}
        await client.send({"type": "pong"})


async def test_pongs_keep_the_connection(short: Server, connect: Connector, room: str) -> None:
    """§11: a client that answers every ping stays connected well past the timeout."""
    client = await connect(short, room, pings="return")
    start = time.monotonic()
    while time.monotonic() - start < 3 * TIMEOUT:
        assert await client.recv() == {"type": "ping"}
        await client.send({"type": "pong"})
    await client.send({"type": "ping"})
    assert await client.recv() == {"type": "pong"}


async def test_any_frame_counts(short: Server, connect: Connector, room: str) -> None:
    """§11: any application frame (here: the client's own pings) resets the silence clock."""
    client = await connect(short, room, pings="return")
    start = time.monotonic()
    while time.monotonic() - start < 3 * TIMEOUT:
        assert await client.recv() == {"type": "ping"}  # paced by the server, never answered with pong
        await client.send({"type": "ping"})
        assert await client.recv() == {"type": "pong"}


async def test_silent_client_closed_with_4000(short: Server, connect: Connector, room: str) -> None:
    """§11: no frame for CHAT_HEARTBEAT_TIMEOUT seconds: close 4000 "heartbeat timeout", and the others hear it."""
    bob = await connect(short, room, "bob")
    bob_hears = asyncio.create_task(bob.until(lambda f: f["type"] == "presence.leave", timeout=10))  # bob answers
    timeouts = await metric(short, "chat_disconnects_total", {"reason": "heartbeat_timeout"})
    start = time.monotonic()
    silent = await connect(short, room, "silent", pings="ignore")
    code, reason, _ = await silent.closed(timeout=10)
    assert (code, reason) == (4000, "heartbeat timeout")
    assert time.monotonic() - start >= TIMEOUT * 0.95
    assert (await bob_hears)[-1]["payload"]["user"] == "silent"
    await wait_for_metric(short, "chat_disconnects_total", timeouts + 1, {"reason": "heartbeat_timeout"})


async def test_protocol_pings_do_not_count(short: Server, connect: Connector, room: str) -> None:
    """§11: WebSocket protocol pings are not application frames: a client sending only those is closed with 4000."""
    client = await connect(short, room, pings="ignore", ping_interval=INTERVAL / 2, ping_timeout=None)
    code, reason, _ = await client.closed(timeout=10)
    assert (code, reason) == (4000, "heartbeat timeout")


async def test_protocol_pings_answered(server: Server, connect: Connector, room: str) -> None:
    """§11: the server answers the client's WebSocket protocol pings."""
    client = await connect(server, room)
    pong = await client.ws.ping()
    await asyncio.wait_for(pong, 5)


CLIENT = """
import sys
from websockets.sync.client import connect
websocket = connect(sys.argv[1])
websocket.recv()  # the welcome
print("ready", flush=True)
sys.stdin.read()  # until the test is done with us
"""


@pytest.mark.cluster
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSTOP], ids=["client killed", "client stopped"])
async def test_client_process_dies_or_stops(make_server: MakeServer, connect: Connector, room: str, sig: int) -> None:
    """§10, §11: a client process killed (its socket closed by the kernel, no close frame) or stopped (it neither
    reads nor answers pings) leaves: the others hear it, and the connection gauge is back to where it was, within
    CHAT_HEARTBEAT_TIMEOUT + 2 s."""
    server = make_server(SHORT, private="client-processes")
    bob = await connect(server, room, "bob")
    baseline = await metric(server, "chat_connections")
    url = chat_url(server.for_client(), room, token=await server.atoken("gone"))
    client = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CLIENT, url, stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True
    )
    try:
        assert client.stdout is not None
        assert await asyncio.wait_for(client.stdout.readline(), 10) == b"ready\n"
        await bob.until(lambda f: f["type"] == "presence.join" and f["payload"]["user"] == "gone")
        await wait_for_metric(server, "chat_connections", baseline + 1)
        client.send_signal(sig)
        leave = await bob.until(lambda f: f["type"] == "presence.leave", timeout=TIMEOUT + 2)
        assert leave[-1]["payload"] == {"user": "gone", "count": 1}
        await wait_for_metric(server, "chat_connections", baseline, timeout=1)
    finally:
        with contextlib.suppress(ProcessLookupError):
            client.kill()
        await client.wait()
