"""Chapter 1's own tests, FastAPI style: the app in-process with TestClient (the conformance suite is in tests/)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from chatcore.settings import Settings
from server import create_app

SETTINGS = Settings(secret="test-secret-test-secret-test-secret", port=80)


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(create_app(SETTINGS)) as test_client:
        yield test_client


def token(client: TestClient, user: str) -> str:
    return str(client.get("/api/token", params={"user": user}).json()["token"])


def test_healthz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "impl": "fastapi"}


def test_token_sets_cookie(client: TestClient) -> None:
    response = client.get("/api/token", params={"user": "alice"})
    assert response.status_code == 200
    assert client.cookies["chat_token"] == response.json()["token"]
    assert client.get("/api/token", params={"user": "no spaces"}).status_code == 400


def test_chat_round_trip(client: TestClient) -> None:
    with client.websocket_connect(f"/ws/chat/lobby?token={token(client, 'alice')}") as ws:
        welcome = ws.receive_json()
        assert welcome["type"] == "welcome"
        assert welcome["payload"]["members"] == ["alice"]
        ws.send_text(json.dumps({"type": "chat.message", "id": "m1", "payload": {"text": "hi"}}))
        frames = [ws.receive_json(), ws.receive_json()]
        assert {"type": "ack", "id": "m1", "seq": 1} in frames
        assert any(f["type"] == "chat.message" and f["payload"]["text"] == "hi" for f in frames)


def test_cookie_auth_and_resume(client: TestClient) -> None:
    client.get("/api/token", params={"user": "bob"})  # the cookie jar now holds chat_token
    with client.websocket_connect("/ws/chat/room-2") as ws:
        epoch = ws.receive_json()["payload"]["epoch"]
        ws.send_text(json.dumps({"type": "chat.message", "id": "m1", "payload": {"text": "one"}}))
        ws.receive_json(), ws.receive_json()
    with client.websocket_connect(f"/ws/chat/room-2?since=0&epoch={epoch}") as ws:
        assert ws.receive_json()["payload"]["resumed"] is True
        assert ws.receive_json()["payload"]["text"] == "one"


def test_refused_without_token(client: TestClient) -> None:
    with pytest.raises(WebSocketDisconnect), client.websocket_connect("/ws/chat/lobby"):
        pass


def test_bad_frames(client: TestClient) -> None:
    with client.websocket_connect(f"/ws/chat/lobby?token={token(client, 'carol')}") as ws:
        ws.receive_json()
        ws.send_text("{nope")
        assert ws.receive_json()["payload"]["code"] == "invalid_json"
        ws.send_bytes(b"binary")
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == 1003
