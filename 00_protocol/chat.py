"""Chapter 0: a terminal chat client for any chapter's server, written with the websockets library."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import urllib.parse
import urllib.request
import uuid
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

HELP = """Type a line to send it as a chat.message. Commands:
  /ping          send {"type": "ping"}: the server answers {"type": "pong"}
  /raw TEXT      send TEXT as it is (try: /raw hello, /raw {"type": "chat.edit"})
  /quit          close the connection (so does Ctrl+D)"""


def get_token(url: str, user: str) -> str:
    """A token from the server's demo login, GET /api/token?user=NAME (SPEC.md §2.3)."""
    query = urllib.parse.urlencode({"user": user})
    with urllib.request.urlopen(f"{url}/api/token?{query}", timeout=10) as response:
        return str(json.load(response)["token"])


def show(frame: dict[str, Any]) -> str:
    """One line for a frame from the server."""
    payload = frame.get("payload") or {}
    match frame.get("type"):
        case "welcome":
            return (
                f"* welcome {payload['user']} to {payload['room']}: members {', '.join(payload['members'])}; "
                f"seq {payload['seq']}, epoch {payload['epoch']}, resumed {payload['resumed']}, "
                f"heartbeat every {payload['heartbeat']} s"
            )
        case "chat.message":
            clock = time.strftime("%H:%M:%S", time.localtime(payload["ts"] / 1000))
            return f"[#{frame['seq']} {clock}] {payload['user']}: {payload['text']}"
        case "ack":
            return f"  (ack: your {frame['id']} is #{frame['seq']})"
        case "presence.join":
            return f"* {payload['user']} joined; members {', '.join(payload['members'])}"
        case "presence.leave":
            return f"* {payload['user']} left; members {', '.join(payload['members']) or 'none'}"
        case "pong":
            return "* pong"
        case "error":
            return f"! error {payload['code']} (id {json.dumps(frame['id'])}): {payload['detail']}"
        case _:
            return f"* {json.dumps(frame)}"


async def read_frames(websocket: ClientConnection, *, answer_pings: bool, raw: bool) -> None:
    """Print every frame the server sends; answer its pings, as SPEC.md §11 asks (unless told not to)."""
    async for text in websocket:
        if raw:
            print(f"< {text!s}", flush=True)
        frame = json.loads(text)
        if frame == {"type": "ping"}:
            if answer_pings:
                await websocket.send('{"type": "pong"}')
            print(f"* ping from the server: {'answered pong' if answer_pings else 'not answered (--no-pong)'}")
            continue
        print(show(frame), flush=True)


async def write_frames(websocket: ClientConnection, *, raw: bool) -> None:
    """Send what the user types, until /quit or the end of input."""
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    while data := await stdin.readline():  # b"" at the end of input
        line = data.decode(errors="replace").rstrip("\n")
        if not line:
            continue
        if line == "/quit":
            return
        if line == "/help":
            print(HELP, flush=True)
            continue
        if line == "/ping":
            text = '{"type": "ping"}'
        elif line.startswith("/raw "):
            text = line.removeprefix("/raw ")
        else:
            text = json.dumps({"type": "chat.message", "id": uuid.uuid4().hex[:12], "payload": {"text": line}})
        if raw:
            print(f"> {text}", flush=True)
        await websocket.send(text)


async def chat(url: str, user: str, room: str, *, since: int | None, answer_pings: bool, raw: bool) -> int:
    token = await asyncio.to_thread(get_token, url, user)
    query = {"token": token} | ({} if since is None else {"since": str(since)})
    ws_url = f"ws{url.removeprefix('http')}/ws/chat/{room}?{urllib.parse.urlencode(query)}"
    try:
        async with connect(ws_url, open_timeout=10, ping_interval=None) as websocket:
            reader = asyncio.create_task(read_frames(websocket, answer_pings=answer_pings, raw=raw))
            writer = asyncio.create_task(write_frames(websocket, raw=raw))
            await asyncio.wait([reader, writer], return_when=asyncio.FIRST_COMPLETED)
            writer.cancel()
            if not reader.done():
                await websocket.close()  # /quit or end of input: a normal close (1000)
            await asyncio.wait([reader, writer])
            if reader.exception() and not isinstance(reader.exception(), ConnectionClosed):
                raise reader.exception()  # type: ignore[misc]
    except InvalidStatus as exc:
        print(f"! the server refused the handshake: HTTP {exc.response.status_code}", file=sys.stderr)
        return 1
    close, server_first = websocket.protocol.close_rcvd, websocket.protocol.close_rcvd_then_sent
    if close is None:
        print("* the connection ended without a close frame (1006)")
    else:
        who = "the server" if server_first else "you"
        print(f"* closed by {who}: {close.code} {close.reason}".rstrip())
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, epilog=HELP, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8001", help="the server (default: chapter 1's)")
    parser.add_argument("--user", default=f"guest-{uuid.uuid4().hex[:4]}", help="your name (default: guest-…)")
    parser.add_argument("--room", default="lobby")
    parser.add_argument("--since", type=int, help="replay history after this seq (0: all of it)")
    parser.add_argument("--no-pong", action="store_true", help="don't answer pings: see the heartbeat close you")
    parser.add_argument("--raw", action="store_true", help="also print every frame as sent and received")
    args = parser.parse_args()
    print(f"Connecting to {args.url} as {args.user}, room {args.room}. /help for commands.", flush=True)
    try:
        return asyncio.run(
            chat(
                args.url.rstrip("/"),
                args.user,
                args.room,
                since=args.since,
                answer_pings=not args.no_pong,
                raw=args.raw,
            )
        )
    except KeyboardInterrupt:
        return 0
    except OSError as exc:
        print(f"! can't reach {args.url}: {exc}. Is the server running (make run)?", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
