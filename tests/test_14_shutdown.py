"""SPEC.md §14: on SIGTERM or SIGINT every client gets 1001 and the process exits within 5 s."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable

import pytest

from tests.client import Frame
from tests.conftest import Connector, MakeServer
from tests.harness import FAST, ServerProcess

GOING_AWAY = (1001, "server shutting down")


def ack_with_seq(seq: int) -> Callable[[Frame], bool]:
    return lambda frame: frame["type"] == "ack" and frame["seq"] == seq


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_shutdown_closes_1001(make_server: MakeServer, connect: Connector, room: str, sig: int) -> None:
    """§14: every connected client receives close 1001, then the process exits within 5 s, without a traceback."""
    server = make_server(fresh=True)
    assert isinstance(server, ServerProcess)
    clients = [await connect(server, room, "alice"), await connect(server, room, "bob"), await connect(server, "x")]
    server.signal(sig)
    closes = await asyncio.gather(*[client.closed() for client in clients])
    assert [(code, reason) for code, reason, _ in closes] == [GOING_AWAY] * 3
    status = await asyncio.to_thread(server.wait, 5.0)
    assert status in (0, -sig), f"exit status {status}: neither 0 nor the signal re-raised after a clean shutdown"
    assert "Traceback" not in server.log()


async def test_shutdown_reaches_a_client_behind_on_reading(
    make_server: MakeServer, connect: Connector, room: str
) -> None:
    """§14: a client that is not reading when the server stops still gets 1001 if it reads again at once."""
    server = make_server({**FAST, "CHAT_SEND_QUEUE": "100000"}, fresh=True)
    assert isinstance(server, ServerProcess)
    behind = await connect(server, room, "behind", reading=False)
    sender = await connect(server, room, "sender")
    for batch in range(100):  # 4 MB: more than the socket buffers hold, so the server's writer is blocked
        for _ in range(20):
            await sender.say("x" * 1900)
        frames = await sender.until(ack_with_seq(20 * (batch + 1)), timeout=20)
        assert all(f["type"] in ("chat.message", "ack", "presence.join") for f in frames)
    server.signal(signal.SIGTERM)
    code, reason, frames = await behind.closed(timeout=20)
    assert (code, reason) == GOING_AWAY
    seqs = [f["seq"] for f in frames if f["type"] == "chat.message"]
    assert seqs == list(range(1, len(seqs) + 1))
    assert "Traceback" not in server.log()


async def test_shutdown_with_a_request_half_sent(make_server: MakeServer, connect: Connector, room: str) -> None:
    """§14: a connection still sending its HTTP request doesn't keep the server from closing and exiting cleanly."""
    server = make_server(fresh=True)
    assert isinstance(server, ServerProcess)
    client = await connect(server, room)
    mute = await connect(server, room, "mute", reading=False)
    mute.ws.transport.pause_reading()  # it won't answer the server's close either
    _, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # no empty line: the request never ends
    await writer.drain()
    await client.barrier()  # the server has read all of that
    server.signal(signal.SIGTERM)
    assert (await client.closed())[:2] == GOING_AWAY
    status = await asyncio.to_thread(server.wait, 5.0)
    writer.close()
    assert status in (0, -signal.SIGTERM), f"exit status {status}"
    assert "Traceback" not in server.log()
