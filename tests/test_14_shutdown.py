"""SPEC.md §14: on SIGTERM or SIGINT every client gets 1001 and the process exits within 5 s."""

from __future__ import annotations

import asyncio
import signal

import pytest

from tests.conftest import Connector, MakeServer
from tests.harness import ServerProcess


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_shutdown_closes_1001(make_server: MakeServer, connect: Connector, room: str, sig: int) -> None:
    """§14: every connected client receives close 1001, then the process exits within 5 s, without a traceback."""
    server = make_server(fresh=True)
    assert isinstance(server, ServerProcess)
    clients = [await connect(server, room, "alice"), await connect(server, room, "bob"), await connect(server, "x")]
    server.signal(sig)
    codes = await asyncio.gather(*[client.closed() for client in clients])
    assert [code for code, _, _ in codes] == [1001, 1001, 1001]
    status = await asyncio.to_thread(server.wait, 5.0)
    assert status in (0, -sig), f"exit status {status}: neither 0 nor the signal re-raised after a clean shutdown"
    assert "Traceback" not in server.log()
