"""SPEC.md §19: under load and from hostile clients. `make test` runs each scenario small; `make stress` (pytest's
``--stress``) at the sizes §19 names."""

from __future__ import annotations

import asyncio

import pytest

from tests.client import Client
from tests.conftest import MakeServer
from tests.crowd import close_all, crowd, say_at_once
from tests.harness import FAST


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
