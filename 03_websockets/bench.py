"""Chapter 3's benchmark baselines (CHAT_BENCH_ENDPOINTS=1, SPEC.md §18): the websockets library alone."""

from __future__ import annotations

import contextlib
from collections import defaultdict

from websockets.asyncio.server import ServerConnection, broadcast
from websockets.exceptions import ConnectionClosed

from chatcore.protocol import valid_room

ECHO_PATH = "/ws/echo"
BENCH_PATH = "/ws/bench/"
rooms: defaultdict[str, set[ServerConnection]] = defaultdict(set)


def bench_route(path: str) -> str | None:
    """The room of a ``/ws/bench/{room}`` path, "" for ``/ws/echo``, None for anything else."""
    if path == ECHO_PATH:
        return ""
    room = path.removeprefix(BENCH_PATH)
    return room if path.startswith(BENCH_PATH) and valid_room(room) else None


async def bench(websocket: ServerConnection, room: str) -> None:
    """Echo every text frame (room ""), or send it to everyone in the room with the library's ``broadcast``."""
    members = rooms[room] if room else set()
    members.add(websocket)
    try:
        with contextlib.suppress(ConnectionClosed):
            async for message in websocket:
                if isinstance(message, bytes):
                    await websocket.close(1003)
                elif room:
                    broadcast(members, message)
                else:
                    await websocket.send(message)
    finally:
        members.discard(websocket)
        if room and not members:
            del rooms[room]
