"""The naive chat, as FastAPI's docs write it: a ConnectionManager that awaits one send after the other."""

# This is where a student starts, and the benchmarks' baseline for chapter 1 (benchmarks/README.md): it relays
# every frame to its room and nothing more. No token, no history, no limits, no heartbeat; a member that stops
# reading stalls its whole room, and a send to a member that has just left raises in the middle of the loop.
# The chapter's server.py is the correct version. Run it alone: python 01_fastapi/naive.py (port 8011).

import os
from collections import defaultdict

import uvicorn
from fastapi import FastAPI, WebSocket, WebSocketDisconnect

app = FastAPI()


class ConnectionManager:
    def __init__(self) -> None:
        self.active_connections: list[WebSocket] = []

    async def connect(self, websocket: WebSocket) -> None:
        await websocket.accept()
        self.active_connections.append(websocket)

    def disconnect(self, websocket: WebSocket) -> None:
        self.active_connections.remove(websocket)

    async def broadcast(self, message: str) -> None:
        for connection in self.active_connections:
            await connection.send_text(message)


rooms: defaultdict[str, ConnectionManager] = defaultdict(ConnectionManager)  # one manager per room


@app.websocket("/ws/{room}")
async def websocket_endpoint(websocket: WebSocket, room: str) -> None:
    manager = rooms[room]
    await manager.connect(websocket)
    try:
        while True:
            data = await websocket.receive_text()  # {"message": "..."}
            await manager.broadcast(data)
    except WebSocketDisconnect:
        manager.disconnect(websocket)


if __name__ == "__main__":
    host, port = os.environ.get("CHAT_HOST", "127.0.0.1"), int(os.environ.get("CHAT_PORT", "8011"))
    uvicorn.run(app, host=host, port=port, loop="asyncio", log_level="warning")  # asyncio's loop, as chapter 1's
