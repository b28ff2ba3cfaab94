"""SPEC.md §2: the HTTP endpoints beside the WebSocket."""

from __future__ import annotations

import re

import httpx2
import pytest

from tests.client import metric, wait_for_metric
from tests.conftest import Connector, MakeServer
from tests.harness import Server


async def test_page_and_its_assets(server: Server) -> None:
    """§2.1: GET / serves the chat page; its scripts (and the modules they import) and styles come from the
    same origin, scripts with a JavaScript type (browsers refuse to run a module served otherwise)."""
    async with httpx2.AsyncClient(base_url=server.url) as http:
        page = await http.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assets = re.findall(r'(?:src|href)="(/[^"]+)"', page.text)
        assert assets, "the page references no same-origin asset"
        for path in assets:
            response = await http.get(path)
            assert response.status_code == 200, path
            if path.endswith(".js"):
                assert response.headers["content-type"].split(";")[0] in {"text/javascript", "application/javascript"}
                imports = re.findall(r'^import .* from "\./([^"]+)";', response.text, re.MULTILINE)
                assets += [f"/client/{name}" for name in imports if f"/client/{name}" not in assets]
        assert "/client/chat-client.js" in assets, "the page should use the shared client"


@pytest.mark.parametrize(
    "name", ["nope.js", "x" * 300, "..%2fSPEC.md", "%2e%2e/SPEC.md", ".hidden", "%00", "%ff", "tests/fakes.js"]
)
def test_client_file_not_found(server: Server, name: str) -> None:
    """§2.1: a file that shared_client/ doesn't have is 404, whatever its name (nothing outside the folder, nothing
    in its subfolders: its tests are not the page's)."""
    assert httpx2.get(f"{server.url}/client/{name}").status_code == 404


def test_healthz(server: Server) -> None:
    """§2.2: GET /healthz answers {"status": "ok", "impl": name}."""
    response = httpx2.get(f"{server.url}/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert isinstance(body["impl"], str) and body["impl"]
    assert set(body) == {"status", "impl"}


@pytest.mark.parametrize("user", ["a", "Alice.B_c-9", "x" * 32])
def test_token_grant(server: Server, user: str) -> None:
    """§2.3: a valid name gets a token in the body and in an HttpOnly, SameSite=Strict cookie on /."""
    response = httpx2.get(f"{server.url}/api/token", params={"user": user})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"user", "token", "expires_in"}
    assert body["user"] == user
    assert body["expires_in"] == 3600
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"chat_token={body['token']};")
    attributes = {a.strip().lower() for a in cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/", "max-age=3600"} <= attributes


@pytest.mark.parametrize(
    "query", [{}, {"user": ""}, {"user": "x" * 33}, {"user": "a b"}, {"user": "é"}, {"user": "a/b"}]
)
def test_token_refused_for_invalid_user(server: Server, query: dict[str, str]) -> None:
    """§2.3: a missing or invalid name is answered 400 {"error": "invalid_user", "detail": ...}, no cookie."""
    response = httpx2.get(f"{server.url}/api/token", params=query)
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_user"
    assert isinstance(body["detail"], str) and body["detail"]
    assert "set-cookie" not in response.headers


def test_token_lifetime_follows_setting(make_server: MakeServer) -> None:
    """§2.3: expires_in is CHAT_TOKEN_TTL."""
    server = make_server({"CHAT_TOKEN_TTL": "120"})
    assert httpx2.get(f"{server.url}/api/token", params={"user": "a"}).json()["expires_in"] == 120


def test_metrics_format(server: Server) -> None:
    """§2.4: GET /metrics is Prometheus text with the chat series."""
    response = httpx2.get(f"{server.url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    for line in [
        "# TYPE chat_connections gauge",
        "# TYPE chat_messages_received_total counter",
        "# TYPE chat_messages_delivered_total counter",
        "# TYPE chat_disconnects_total counter",
        "# TYPE chat_fanout_gaps_total counter",
    ]:
        assert line in response.text.splitlines(), line


async def test_metrics_count(make_server: MakeServer, connect: Connector, room: str) -> None:
    """§2.4: the connection gauge, message counters and disconnect reasons follow what happened."""
    server = make_server(fresh=True)
    alice = await connect(server, room, "alice")
    bob = await connect(server, room, "bob")
    await wait_for_metric(server, "chat_connections", 2)
    await alice.say("one")
    await bob.until(lambda f: f["type"] == "chat.message")
    await alice.until(lambda f: f["type"] == "ack")
    await wait_for_metric(server, "chat_messages_received_total", 1)
    await wait_for_metric(server, "chat_messages_delivered_total", 2)
    await bob.close()
    await wait_for_metric(server, "chat_connections", 1)
    await wait_for_metric(server, "chat_disconnects_total", 1, {"reason": "client_closed"})
    await alice.send(b"binary")
    assert (await alice.closed())[0] == 1003
    await wait_for_metric(server, "chat_connections", 0)
    await wait_for_metric(server, "chat_disconnects_total", 1, {"reason": "binary_frame"})
    assert await metric(server, "chat_messages_delivered_total") == 2
