"""Chapter 0: a terminal chat client for any chapter's server, written with the websockets library."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import threading
import time
import urllib.error
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


class LoginFailed(Exception):
    """The server refused to give a token: its reason."""


def get_token(url: str, user: str) -> str:
    """A token from the server's demo login, GET /api/token?user=NAME (SPEC.md §2.3)."""
    query = urllib.parse.urlencode({"user": user})
    try:
        with urllib.request.urlopen(f"{url}/api/token?{query}", timeout=10) as response:
            return str(json.load(response)["token"])
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        raise LoginFailed(f"GET /api/token answered {exc.code}: {detail}") from None


def show(text: str) -> str:
    """One line for a frame from the server (as it came, if it is not what SPEC.md says)."""
    try:
        return describe(json.loads(text))
    except (ValueError, TypeError, KeyError, AttributeError):
        return f"? {text}"


def is_ping(text: str) -> bool:
    try:
        return bool(json.loads(text) == {"type": "ping"})
    except ValueError:
        return False


def describe(frame: dict[str, Any]) -> str:
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
            return f"* {payload['user']} joined; {payload['count']} in the room"
        case "presence.leave":
            return f"* {payload['user']} left; {payload['count']} in the room"
        case "pong":
            return "* pong"
        case "error":
            return f"! error {payload['code']} (id {json.dumps(frame['id'])}): {payload['detail']}"
        case _:
            return f"* {json.dumps(frame)}"


async def read_frames(websocket: ClientConnection, pong: asyncio.Event, *, answer_pings: bool, raw: bool) -> None:
    """Print every frame the server sends; answer its pings, as SPEC.md §11 asks (unless told not to)."""
    async for text in websocket:
        if raw:
            print(f"< {text!s}")
        if is_ping(str(text)):
            if answer_pings:
                await websocket.send('{"type": "pong"}')
            print(f"* ping from the server: {'answered pong' if answer_pings else 'not answered (--no-pong)'}")
            continue
        line = show(str(text))
        if line == "* pong":
            pong.set()
        print(line)


def read_lines(loop: asyncio.AbstractEventLoop, lines: asyncio.Queue[str | None]) -> None:
    """In a thread of its own: hand each line typed to the event loop, then None at the end of input."""
    for line in sys.stdin:
        loop.call_soon_threadsafe(lines.put_nowait, line.rstrip("\n"))
    loop.call_soon_threadsafe(lines.put_nowait, None)


async def write_frames(websocket: ClientConnection, pong: asyncio.Event, *, raw: bool) -> None:
    """Send what the user types, until /quit or the end of input; then wait (5 s at most) for the answers
    to what was sent: the server answers a ping after everything it queued for us before it."""
    lines: asyncio.Queue[str | None] = asyncio.Queue()
    # A daemon thread: blocking reads of a terminal, a pipe or a file alike, and it never holds up the exit.
    threading.Thread(target=read_lines, args=(asyncio.get_running_loop(), lines), daemon=True).start()
    while (line := await lines.get()) is not None:
        if not line:
            continue
        if line == "/quit":
            break
        if line == "/help":
            print(HELP)
            continue
        if line == "/ping":
            text = '{"type": "ping"}'
        elif line.startswith("/raw "):
            text = line.removeprefix("/raw ")
        else:
            text = json.dumps({"type": "chat.message", "id": uuid.uuid4().hex[:12], "payload": {"text": line}})
        if raw:
            print(f"> {text}")
        await websocket.send(text)
    pong.clear()
    await websocket.send('{"type": "ping"}')
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(pong.wait(), 5)


async def chat(
    url: str, user: str, room: str, *, since: int | None, epoch: str | None, answer_pings: bool, raw: bool
) -> int:
    token = await asyncio.to_thread(get_token, url, user)
    query = {"token": token, "since": since, "epoch": epoch}
    params = urllib.parse.urlencode({key: value for key, value in query.items() if value is not None})
    ws_url = f"ws{url.removeprefix('http')}/ws/chat/{urllib.parse.quote(room, safe='')}?{params}"
    try:
        async with connect(ws_url, open_timeout=10, ping_interval=None) as websocket:
            pong = asyncio.Event()
            reader = asyncio.create_task(read_frames(websocket, pong, answer_pings=answer_pings, raw=raw))
            writer = asyncio.create_task(write_frames(websocket, pong, raw=raw))
            await asyncio.wait([reader, writer], return_when=asyncio.FIRST_COMPLETED)
            writer.cancel()
            if not reader.done():
                await websocket.close()  # /quit or end of input: a normal close (1000)
            await asyncio.wait([reader, writer])
            for task in (reader, writer):
                problem = None if task.cancelled() else task.exception()
                if problem is not None and not isinstance(problem, ConnectionClosed):
                    raise problem
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
    parser.add_argument("--since", type=int, help="the last seq you saw: resume after it (SPEC.md §9; 0: all)")
    parser.add_argument("--epoch", help="the room's epoch when you saw it (from the welcome): needed to resume")
    parser.add_argument("--no-pong", action="store_true", help="don't answer pings: see the heartbeat close you")
    parser.add_argument("--raw", action="store_true", help="also print every frame as sent and received")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # each line as it comes, also into a pipe
    print(f"Connecting to {args.url} as {args.user}, room {args.room}. /help for commands.")
    try:
        return asyncio.run(
            chat(
                args.url.rstrip("/"),
                args.user,
                args.room,
                since=args.since,
                epoch=args.epoch,
                answer_pings=not args.no_pong,
                raw=args.raw,
            )
        )
    except KeyboardInterrupt:
        return 0
    except LoginFailed as exc:
        print(f"! {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"! can't reach {args.url}: {exc}. Is the server running (make run)?", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
