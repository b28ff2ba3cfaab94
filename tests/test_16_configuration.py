"""SPEC.md §16: configuration by CHAT_* variables; a bad value stops start-up with a message naming it."""

from __future__ import annotations

import json

import httpx2
import pytest
from websockets.asyncio.client import connect

from tests.client import chat_url
from tests.conftest import MakeServer


@pytest.mark.parametrize(
    "env",
    [
        {"CHAT_HISTORY_SIZE": "lots"},
        {"CHAT_RATE_LIMIT": "-1"},
        {"CHAT_RATE_LIMIT": "inf"},
        {"CHAT_HEARTBEAT_INTERVAL": "0"},
        {"CHAT_HEARTBEAT_INTERVAL": "nan"},
        {"CHAT_PORT": "70000"},
        {"CHAT_LOG_LEVEL": "loud"},
        {"CHAT_REDIS_URL": "http://127.0.0.1:6379"},
        {"CHAT_PRESENCE_TTL": "0"},
        {"CHAT_ROOM_TTL": "30"},  # less than twice the heartbeat interval (20 s)
        {"CHAT_MAX_ROOMS": "0"},
        {"CHAT_BENCH_ENDPOINTS": "yes"},
        {"CHAT_TRUSTED_PROXIES": "127.0.0.1,proxy.example"},
    ],
    ids=lambda env: "=".join(next(iter(env.items()))),
)
def test_bad_setting_stops_startup(make_server: MakeServer, env: dict[str, str]) -> None:
    """§16: a malformed CHAT_* value makes the server exit at start-up with one line naming the variable."""
    with pytest.raises(RuntimeError, match="exited") as failure:
        make_server(env, fresh=True)
    assert next(iter(env)) in str(failure.value)
    assert "Traceback" not in str(failure.value)


@pytest.mark.parametrize(
    ("trusted", "client"),
    [
        ("", "127.0.0.1"),  # the default: X-Forwarded-For is anyone's to write
        ("10.0.0.0/8", "127.0.0.1"),  # the header comes from a peer that is not a trusted proxy
        ("127.0.0.1,10.0.0.0/8", "203.0.113.7"),  # the last entry that a trusted proxy did not write
    ],
    ids=["untrusted-by-default", "untrusted-peer", "trusted-proxies"],
)
async def test_client_address_behind_a_proxy(make_server: MakeServer, room: str, trusted: str, client: str) -> None:
    """§16.1: the logs show the peer's address, or behind CHAT_TRUSTED_PROXIES the client's from X-Forwarded-For."""
    server = make_server({"CHAT_TRUSTED_PROXIES": trusted} if trusted else {})
    if server.name == "running":
        pytest.skip("the log of a server the suite did not start is not readable")
    start = server.log_size()
    # Two header lines, as HAProxy adds one of its own: the client wrote the first entry, with a port
    forwarded = [("X-Forwarded-For", "198.51.100.1"), ("X-Forwarded-For", "203.0.113.7:4711, 10.1.2.3")]
    async with httpx2.AsyncClient() as http:
        assert (await http.get(f"{server.url}/healthz?probe={room}", headers=forwarded)).status_code == 200
    async with connect(chat_url(server, room, token=server.token("alice")), additional_headers=forwarded) as ws:
        assert json.loads(await ws.recv())["type"] == "welcome"
    async with httpx2.AsyncClient() as http:  # a request after them: their log lines are written by now
        assert (await http.get(f"{server.url}/healthz")).status_code == 200
    lines = [line for line in server.log(start).splitlines() if room in line]
    assert any("/healthz" in line for line in lines) and any("/ws/chat/" in line for line in lines), lines
    for line in lines:
        assert f" {client}:" in line, line
        assert all(f"{other}:" not in line for other in {"127.0.0.1", "198.51.100.1", "10.1.2.3"} - {client}), line
