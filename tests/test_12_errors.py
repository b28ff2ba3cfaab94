"""SPEC.md §12: frames that break the protocol get an error frame; the connection stays open."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import Connector, MakeServer
from tests.harness import FAST, Server

OK_ID = "id-1"


def chat(**fields: Any) -> str:
    frame: dict[str, Any] = {"type": "chat.message", "id": OK_ID, "payload": {"text": "hi"}}
    frame.update(fields)
    return json.dumps({k: v for k, v in frame.items() if v is not ...})


CASES: dict[str, tuple[str, str, str | None]] = {
    # name: (frame, error code, id echoed back)
    "not json": ("hello", "invalid_json", None),
    "truncated json": ('{"type": "ping"', "invalid_json", None),
    "json array": ('[{"type": "ping"}]', "invalid_message", None),
    "json string": ('"ping"', "invalid_message", None),
    "json null": ("null", "invalid_message", None),
    "json number": ("1", "invalid_message", None),
    "no type": ('{"id": "id-1"}', "invalid_message", OK_ID),
    "type not a string": ('{"type": 1}', "invalid_message", None),
    "unknown type": ('{"type": "chat.edit"}', "unknown_type", None),
    "unknown type with id": ('{"type": "chat.edit", "id": "id-1"}', "unknown_type", OK_ID),
    "type case": ('{"type": "Chat.Message", "id": "id-1", "payload": {"text": "hi"}}', "unknown_type", OK_ID),
    "no id": (chat(id=...), "invalid_message", None),
    "empty id": (chat(id=""), "invalid_message", None),
    "id too long": (chat(id="x" * 65), "invalid_message", None),
    "id not a string": (chat(id=7), "invalid_message", None),
    "id with space": (chat(id="a b"), "invalid_message", None),
    "no payload": (chat(payload=...), "invalid_message", OK_ID),
    "payload not an object": (chat(payload="hi"), "invalid_message", OK_ID),
    "no text": (chat(payload={}), "invalid_message", OK_ID),
    "empty text": (chat(payload={"text": ""}), "invalid_message", OK_ID),
    "text too long": (chat(payload={"text": "x" * 2001}), "invalid_message", OK_ID),
    "text not a string": (chat(payload={"text": 5}), "invalid_message", OK_ID),
    "text null": (chat(payload={"text": None}), "invalid_message", OK_ID),
    "extra field": (chat(seq=3), "invalid_message", OK_ID),
    "client sets user": (chat(payload={"text": "hi", "user": "root"}), "invalid_message", OK_ID),
    "ping with fields": ('{"type": "ping", "id": "id-1"}', "invalid_message", OK_ID),
    "pong with fields": ('{"type": "pong", "payload": {}}', "invalid_message", None),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_error_frame(server: Server, connect: Connector, room: str, case: str) -> None:
    """§12: each kind of bad frame gets {"type": "error", "id", "payload": {"code", "detail"}}, nothing else."""
    frame, code, msg_id = CASES[case]
    alice = await connect(server, room, "alice")
    bob = await connect(server, room, "bob")
    await alice.recv()  # bob's join
    await alice.send(frame)
    error = await alice.recv()
    assert set(error) == {"type", "id", "payload"}
    assert error["type"] == "error"
    assert error["id"] == msg_id
    assert set(error["payload"]) == {"code", "detail"}
    assert error["payload"]["code"] == code
    assert isinstance(error["payload"]["detail"], str) and error["payload"]["detail"]
    assert await bob.barrier() == []  # nothing was broadcast
    assert await alice.barrier() == []  # still open


async def test_many_errors_keep_the_connection(make_server: MakeServer, connect: Connector, room: str) -> None:
    """§12: errors never close the connection, however many; valid frames still work in between."""
    alice = await connect(make_server(FAST), room, "alice")
    for frame, code, _ in CASES.values():
        await alice.send(frame)
        assert (await alice.expect("error"))["payload"]["code"] == code
    await alice.say("still here", "after-errors")
    frames = await alice.until(lambda f: f["type"] == "ack")
    assert frames[-1] == {"type": "ack", "id": "after-errors", "seq": 1}
