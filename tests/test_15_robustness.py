"""SPEC.md §15: nothing a client sends makes the server fail (no 1011, no traceback, still healthy)."""

from __future__ import annotations

import asyncio
import itertools
import json
import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.frames import Close as WsClose
from websockets.frames import Frame, Opcode
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as sync_connect

from tests.client import CLOSE_TIMEOUT, TIMEOUT, chat_url, metric, wait_for_metric
from tests.conftest import Connector, MakeServer
from tests.harness import FAST, Server
from tests.test_05_frames import SERVER_TYPES
from tests.test_14_shutdown import ack_with_seq

text = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)  # any Unicode a text frame can carry
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=12,
)
near_valid = st.fixed_dictionaries(
    {"type": st.sampled_from(["chat.message", "ping", "pong", "chat.edit", ""]) | text},
    optional={
        "id": st.from_regex(r"[A-Za-z0-9_.:\-]{1,64}", fullmatch=True) | json_values,
        "payload": st.fixed_dictionaries({"text": st.text(max_size=2100) | json_values}, optional={"x": json_values})
        | json_values,
        "seq": json_values,
    },
)
frames = st.one_of(json_values.map(json.dumps), near_valid.map(json.dumps), text)


class Exchange:
    """Send one frame, then a sentinel message; return everything that came back before the sentinel's ack."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.counter = itertools.count()

    def __call__(self, frame: str) -> list[dict[str, Any]]:
        sentinel = f"sentinel-{next(self.counter)}"
        self.ws.send(frame)
        self.ws.send(json.dumps({"type": "chat.message", "id": sentinel, "payload": {"text": "."}}))
        replies: list[dict[str, Any]] = []
        while True:
            reply = json.loads(self.ws.recv(timeout=5))
            assert isinstance(reply, dict) and reply.get("type") in SERVER_TYPES, reply
            if reply["type"] == "ack" and reply["id"] == sentinel:
                return replies
            if not (reply["type"] == "chat.message" and reply["payload"]["id"] == sentinel):
                replies.append(reply)


def test_arbitrary_frames(make_server: MakeServer, room: str) -> None:
    """§15, §12: any text frame gets a reply of a SPEC type (an error when invalid), never a close or a traceback."""
    server = make_server(FAST, private="fuzz")
    start = server.log_size()
    with sync_connect(chat_url(server, room, token=server.token("fuzz")), open_timeout=5, close_timeout=2) as ws:
        assert json.loads(ws.recv(timeout=5))["type"] == "welcome"
        exchange = Exchange(ws)

        @settings(
            max_examples=300,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        )
        @given(frame=frames)
        def check(frame: str) -> None:
            try:
                replies = exchange(frame)
            except ConnectionClosed as exc:
                pytest.fail(f"closed with {exc.rcvd} after {frame!r}")
            if frame != '{"type": "pong"}':
                assert replies, f"no reply to {frame!r}"
                assert {r["type"] for r in replies} <= {"error", "pong", "chat.message", "ack"}, replies

        check()
    assert server.healthy()
    assert "Traceback" not in server.log(start)


@pytest.mark.parametrize("path", ["/healthz", "/ws/chat/lobby"])
@pytest.mark.parametrize(
    "after",
    [b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", b"\x88\x80junk\r\n\r\n"],
    ids=["pipelined request", "junk"],
)
async def test_bytes_after_a_request(make_server: MakeServer, path: str, after: bytes) -> None:
    """§15: a second request right behind the first (HTTP pipelining), or junk, is answered or the connection
    closed; never a traceback."""
    server = make_server(private="fuzz")
    start = server.log_size()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode() + after)
    await asyncio.wait_for(reader.read(), TIMEOUT)  # until the server closes the connection
    writer.close()
    assert server.healthy()
    assert "Traceback" not in server.log(start)


async def test_invalid_utf8_closes_1007(make_server: MakeServer, connect: Connector, room: str) -> None:
    """§15: a text frame that is not UTF-8 is closed with 1007 by the WebSocket layer, and nothing else breaks."""
    server: Server = make_server(FAST, private="fuzz")
    start = server.log_size()
    client = await connect(server, room)
    await client.ws.send(b'{"type": "\xff"}', text=True)
    assert (await client.closed())[0] == 1007
    assert server.healthy()
    assert "Traceback" not in server.log(start)


async def test_broken_frame_closes_1002(make_server: MakeServer, connect: Connector, room: str) -> None:
    """§15: a frame that breaks RFC 6455 (a reserved bit set, no extension agreed) is closed with 1002."""
    server: Server = make_server(FAST, private="fuzz")
    start = server.log_size()
    client = await connect(server, room)
    client.ws.transport.write(b"\xc1\x82\x00\x00\x00\x00hi")  # FIN, RSV1, text; masked with zeros: "hi"
    assert (await client.closed())[0] == 1002
    assert server.healthy()
    assert "Traceback" not in server.log(start)


async def test_frames_then_close_in_one_write(make_server: MakeServer, connect: Connector, room: str) -> None:
    """§15: a ping, a binary frame and a close frame arriving together end the connection without a traceback."""
    server = make_server(FAST, private="fuzz")
    start = server.log_size()
    binary = await metric(server, "chat_disconnects_total", {"reason": "binary_frame"})
    client = await connect(server, room)
    client.write_at_once('{"type": "ping"}', b"binary", WsClose(1000, "bye"))
    await wait_for_metric(server, "chat_disconnects_total", binary + 1, {"reason": "binary_frame"})
    assert server.healthy()
    assert "Traceback" not in server.log(start)


async def test_burst_larger_than_the_send_queue(make_server: MakeServer, connect: Connector, room: str) -> None:
    """§15, §13.4: a client that reads keeps up, even when it sends more frames at once than its queue holds."""
    server = make_server(FAST, private="fuzz")
    client = await connect(server, room)
    count = 3 * 256  # CHAT_SEND_QUEUE's default is 256
    client.write_at_once(*['{"type": "ping"}'] * count)
    assert [await client.recv() for _ in range(count)] == [{"type": "pong"}] * count
    assert await client.barrier() == []


@pytest.mark.parametrize(
    ("frames", "reason"),
    [((WsClose(1000, "bye"),), "client_closed"), ((b"binary", WsClose(1000, "bye")), "binary_frame")],
    ids=["close", "binary then close"],
)
async def test_close_while_behind_on_reading(
    make_server: MakeServer, connect: Connector, room: str, frames: tuple[bytes | WsClose, ...], reason: str
) -> None:
    """§10, §15: a client that ends its connection while data it has not read is queued for it leaves within
    the close timeout (not at the heartbeat timeout), and the server logs no traceback."""
    server = make_server({**FAST, "CHAT_SEND_QUEUE": "100000"}, private="fuzz")
    start = server.log_size()
    ended = await metric(server, "chat_disconnects_total", {"reason": reason})
    behind = await connect(server, room, "behind", reading=False)
    sender = await connect(server, room, "sender")
    for batch in range(1, 101):  # 4 MB: more than the socket buffers hold
        for _ in range(20):
            await sender.say("x" * 1900)
        await sender.until(ack_with_seq(20 * batch))
    behind.ws.transport.pause_reading()  # and it won't read its close frame's answer either
    behind.write_at_once(*frames)
    leave = await sender.until(lambda f: f["type"] == "presence.leave", timeout=CLOSE_TIMEOUT + TIMEOUT)  # not 40 s
    assert leave[-1]["payload"]["user"] == "behind"
    await wait_for_metric(server, "chat_disconnects_total", ended + 1, {"reason": reason})
    assert server.healthy()
    assert "Traceback" not in server.log(start)


async def test_close_while_frames_are_on_their_way(make_server: MakeServer, connect: Connector, room: str) -> None:
    """§15: clients that close while the server is busy sending to them leave without a traceback."""
    server = make_server(FAST, private="fuzz")
    start = server.log_size()
    closed = await metric(server, "chat_disconnects_total", {"reason": "client_closed"})
    sender = await connect(server, room, "sender")
    closers = [await connect(server, room, f"closer{n}") for n in range(10)]
    await sender.until(lambda f: f["type"] == "presence.join" and f["payload"]["count"] == 11)
    for n in range(1, 301):
        await sender.say(f"m{n}")
        if n % 30 == 0:  # one closes after every 30 messages, while the earlier ones are on their way to it
            closers[n // 30 - 1].write_at_once(WsClose(1000, "bye"))
    await sender.until(ack_with_seq(300))
    timeout = CLOSE_TIMEOUT + TIMEOUT  # the closers read nothing, so §10 gives them 5 s to leave
    await wait_for_metric(server, "chat_disconnects_total", closed + 10, {"reason": "client_closed"}, timeout)
    assert server.healthy()
    assert "Traceback" not in server.log(start)


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        *[(struct.pack("!H", code), 1002) for code in (999, 1004, 1005, 1006, 1015, 2999, 5000)],
        (b"\x03", 1002),  # a one-byte payload: half a code
        (struct.pack("!H", 1000) + b"\xff", 1007),  # a reason that is not UTF-8
    ],
    ids=["999", "1004", "1005", "1006", "1015", "2999", "5000", "1 byte", "bad reason"],
)
async def test_invalid_close_frame(
    make_server: MakeServer, connect: Connector, room: str, payload: bytes, code: int
) -> None:
    """§15: a close frame with a code RFC 6455 forbids on the wire is answered with a close frame 1002; one whose
    reason is not UTF-8, with 1007 (not a reset); the server goes on without a traceback."""
    server = make_server(FAST, private="fuzz")
    start = server.log_size()
    client = await connect(server, room)
    client.ws.transport.write(Frame(Opcode.CLOSE, payload).serialize(mask=True))
    assert (await client.closed())[0] == code
    assert server.healthy()
    assert "Traceback" not in server.log(start)
