"""The naive chat, as the websockets library's tutorial writes it: broadcast() to a set of connections."""

# This is where a student starts, and the benchmarks' baseline for chapter 3 (benchmarks/README.md): it relays
# every frame to its room and nothing more. No token, no history, no limits: a member that stops reading
# gets every frame all the same (broadcast() writes even past a full buffer), so the server's memory grows
# until the library's ping timeout closes it. The chapter's server.py is the correct version. Run it alone:
# python 03_websockets/naive.py (port 8013).

import asyncio
import os
from collections import defaultdict

from websockets.asyncio.server import ServerConnection, broadcast, serve

ROOMS: defaultdict[str, set[ServerConnection]] = defaultdict(set)


async def handler(websocket: ServerConnection) -> None:
    assert websocket.request is not None
    connections = ROOMS[websocket.request.path.removeprefix("/ws/")]  # /ws/{room}
    connections.add(websocket)
    try:
        async for message in websocket:  # {"message": "..."}
            broadcast(connections, message)
    finally:
        connections.remove(websocket)


async def main() -> None:
    host, port = os.environ.get("CHAT_HOST", "127.0.0.1"), int(os.environ.get("CHAT_PORT", "8013"))
    async with serve(handler, host, port) as server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
