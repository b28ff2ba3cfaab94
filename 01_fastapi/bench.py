"""Chapter 1's benchmark baselines (CHAT_BENCH_ENDPOINTS=1, SPEC.md §18): FastAPI alone, without the protocol."""

from __future__ import annotations

import contextlib
from collections import defaultdict

from fastapi import FastAPI, WebSocket
from starlette.websockets import WebSocketDisconnect

from chatcore.protocol import valid_room

# What a failed send to a member that is going away raises: Starlette's, uvicorn's (an OSError), or the
# RuntimeError of sending after the close.
GONE = (WebSocketDisconnect, RuntimeError, OSError)


def add_bench_routes(app: FastAPI) -> None:
    """``/ws/echo`` sends every text frame back; ``/ws/bench/{room}`` sends it to everyone in the room, the
    way a FastAPI tutorial's connection manager does: one ``await send_text`` after the other."""
    rooms: defaultdict[str, set[WebSocket]] = defaultdict(set)

    @app.websocket("/ws/echo")
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        while (text := await receive_text(websocket)) is not None:
            try:
                await websocket.send_text(text)
            except GONE:  # the client sent and left at once
                return

    @app.websocket("/ws/bench/{room}")
    async def broadcast(websocket: WebSocket, room: str) -> None:
        if not valid_room(room):
            await websocket.close()  # before accept: HTTP 403
            return
        await websocket.accept()
        members = rooms[room]
        members.add(websocket)
        try:
            while (text := await receive_text(websocket)) is not None:
                for member in list(members):
                    with contextlib.suppress(*GONE):
                        await member.send_text(text)
        finally:
            members.discard(websocket)
            if not members:
                del rooms[room]


async def receive_text(websocket: WebSocket) -> str | None:
    """The next text frame; None once the client has gone (or sent a binary frame: then it is closed, 1003)."""
    message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        return None
    if message.get("text") is None:
        with contextlib.suppress(*GONE):
            await websocket.close(1003)
        return None
    return str(message["text"])
