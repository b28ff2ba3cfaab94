"""The benchmarks' native-speed reference: SPEC.md §18's two baselines on picows (Cython), nothing else."""

from __future__ import annotations

import asyncio
import os
import re
import signal
from collections import defaultdict

from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport, WSUpgradeRequest, ws_create_server

BENCH_PATH = re.compile(r"/ws/bench/([A-Za-z0-9_-]{1,64})")


class Echo(WSListener):
    """``/ws/echo``: every text frame back."""

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.TEXT:
            transport.send(WSMsgType.TEXT, frame.get_payload_as_bytes())
        else:
            close(transport, frame)


class Member(WSListener):
    """``/ws/bench/{room}``: every text frame to every connection in the room. The frame is encoded once, and the
    frames a member gets in one turn of the event loop go out in one system call right after it, as the chapters
    write them (``Session.send``): picows' ``send()`` makes one per frame and member, and this reference carried
    less than the chapters then."""

    def __init__(self, members: set[WSTransport], pending: dict[WSTransport, list[bytes]]) -> None:
        self.members, self.pending = members, pending

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.members.add(transport)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.TEXT:
            payload = frame.get_payload_as_bytes()
            data = text_frame(payload)
            if not self.pending:
                asyncio.get_running_loop().call_soon(flush, self.pending)
            for member in self.members:
                self.pending.setdefault(member, []).append(data)
        else:
            close(transport, frame)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.members.discard(transport)
        self.pending.pop(transport, None)


def text_frame(payload: bytes) -> bytes:
    """A server's (unmasked) text frame."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 2**16:
        return bytes((0x81, 126)) + n.to_bytes(2, "big") + payload
    return bytes((0x81, 127)) + n.to_bytes(8, "big") + payload


def flush(pending: dict[WSTransport, list[bytes]]) -> None:
    for member, frames in pending.items():
        if not member.is_close_frame_sent:
            member.underlying_transport.write(b"".join(frames))
    pending.clear()


def close(transport: WSTransport, frame: WSFrame) -> None:
    """A close frame is answered; a binary one closes with 1003; pings are answered by picows itself.
    (The load generator never fragments frames: this server doesn't reassemble them.)"""
    if frame.msg_type == WSMsgType.CLOSE:
        transport.send_close(frame.get_close_code())
        transport.disconnect()
    elif frame.msg_type == WSMsgType.BINARY:
        transport.send_close(WSCloseCode.UNSUPPORTED_DATA)
        transport.disconnect()


async def main() -> None:
    rooms: defaultdict[str, set[WSTransport]] = defaultdict(set)
    pending: dict[WSTransport, list[bytes]] = {}  # frames to write after this turn, every room's

    def listener(request: WSUpgradeRequest) -> WSListener | None:
        path = request.path.decode() if isinstance(request.path, bytes) else request.path
        if path == "/ws/echo":
            return Echo()
        if match := BENCH_PATH.fullmatch(path):
            return Member(rooms[match[1]], pending)
        return None  # picows answers 404

    host, port = os.environ.get("CHAT_HOST", "127.0.0.1"), int(os.environ.get("CHAT_PORT", "8009"))
    server = await ws_create_server(listener, host, port, max_frame_size=2**20)
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set_result, None)
    print(f"picows reference on ws://{host}:{port}/ws/echo and /ws/bench/<room>", flush=True)
    await stop
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
