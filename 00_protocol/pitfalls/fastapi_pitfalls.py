"""FastAPI, written wrong on purpose: one route per pitfall of README.md, for its tests."""

# Each endpoint is the naive chat (01_fastapi/naive.py) with one mistake. Run it alone:
# python 00_protocol/pitfalls/fastapi_pitfalls.py (port 8021).

import asyncio
import os
import time
from collections import defaultdict

import uvicorn
from fastapi import FastAPI, WebSocket, WebSocketDisconnect

app = FastAPI()
ROOMS: defaultdict[str, list[WebSocket]] = defaultdict(list)
QUERY_SECONDS = 0.5  # a slow database query, standing for any blocking call


def save(message: str) -> None:
    """Store the message with a synchronous database driver (here: a sleep as long as a slow query)."""
    time.sleep(QUERY_SECONDS)


@app.websocket("/no-accept/{room}")
async def no_accept(websocket: WebSocket, room: str) -> None:
    # Pitfall 4: reading before accept(). Starlette raises; uvicorn answers the handshake with a 500.
    while True:
        await websocket.receive_text()


@app.websocket("/send-before-accept/{room}")
async def send_before_accept(websocket: WebSocket, room: str) -> None:
    # Pitfall 4, the other way round: a welcome sent before accept().
    await websocket.send_text('{"message": "welcome"}')
    await websocket.accept()


async def chat(websocket: WebSocket, room: str, *, fixed: bool) -> None:
    await websocket.accept()
    connections = ROOMS[room]
    connections.append(websocket)
    try:
        while True:
            data = await websocket.receive_text()
            if fixed:
                await asyncio.to_thread(save, data)  # the fix: the call runs in a thread; the loop goes on
            else:
                save(data)  # Pitfall 5: a blocking call in an async endpoint freezes every connection
            for connection in connections:
                await connection.send_text(data)
    except WebSocketDisconnect:
        connections.remove(websocket)


@app.websocket("/blocking/{room}")
async def blocking(websocket: WebSocket, room: str) -> None:
    await chat(websocket, f"blocking/{room}", fixed=False)


@app.websocket("/blocking-fixed/{room}")
async def blocking_fixed(websocket: WebSocket, room: str) -> None:
    await chat(websocket, f"blocking-fixed/{room}", fixed=True)


if __name__ == "__main__":
    host, port = os.environ.get("CHAT_HOST", "127.0.0.1"), int(os.environ.get("CHAT_PORT", "8021"))
    uvicorn.run(app, host=host, port=port, log_level="warning")
