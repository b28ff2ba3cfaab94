"""Exercise 3 (exercises/README.md): CHAT_MAX_CONNECTIONS, refused with HTTP 503 and Retry-After."""

from __future__ import annotations

import httpx2
import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidStatus

from tests.client import TIMEOUT, chat_url, wait_for_metric
from tests.conftest import Connector, MakeServer
from tests.harness import Server

pytestmark = pytest.mark.exercise(3, impl="websockets")


@pytest.fixture
def limited(make_server: MakeServer) -> Server:
    """A server that takes two chat connections."""
    return make_server({"CHAT_MAX_CONNECTIONS": "2"}, fresh=True)


async def status(server: Server, room: str, user: str) -> tuple[int, str | None]:
    """The HTTP status of a chat handshake (101: accepted), and its Retry-After header."""
    url = chat_url(server, room, token=await server.atoken(user))
    try:
        async with ws_connect(url, open_timeout=TIMEOUT):
            return 101, None
    except InvalidStatus as exc:
        return exc.response.status_code, exc.response.headers.get("Retry-After")


async def test_over_the_limit_is_503(limited: Server, connect: Connector, room: str) -> None:
    """Exercise 3: with two chat connections open, a third handshake gets 503 with "Retry-After: 5"."""
    await connect(limited, room, "alice")
    await connect(limited, room, "bob")
    got = await status(limited, room, "carol")
    assert got == (503, "5"), f"the third handshake got {got}, not (503, '5')"


async def test_a_free_slot_is_taken(limited: Server, connect: Connector, room: str) -> None:
    """Exercise 3: once a connection has ended, a new one is accepted."""
    await connect(limited, room, "alice")
    bob = await connect(limited, room, "bob")
    assert (await status(limited, room, "carol"))[0] == 503
    await bob.close()
    await wait_for_metric(limited, "chat_connections", 1)
    await connect(limited, room, "carol")


async def test_http_is_not_limited(limited: Server, connect: Connector, room: str) -> None:
    """Exercise 3: the limit is on chat connections: the page, tokens and /healthz still answer."""
    await connect(limited, room, "alice")
    await connect(limited, room, "bob")
    async with httpx2.AsyncClient() as http:
        assert (await http.get(f"{limited.url}/healthz", timeout=TIMEOUT)).status_code == 200
