"""The websockets library, written wrong on purpose: one route per pitfall of README.md, for its tests."""

# Each handler is the naive chat (03_websockets/naive.py) with one mistake. Run it alone:
# python 00_protocol/pitfalls/websockets_pitfalls.py (port 8023).

import asyncio
import os
import time
from collections import defaultdict

from websockets.asyncio.server import ServerConnection, broadcast, serve

ROOMS: defaultdict[str, set[ServerConnection]] = defaultdict(set)
QUERY_SECONDS = 0.5  # a slow database query, standing for any blocking call


def save(message: str | bytes) -> None:
    """Store the message with a synchronous database driver (here: a sleep as long as a slow query)."""
    time.sleep(QUERY_SECONDS)


async def handler(websocket: ServerConnection) -> None:
    assert websocket.request is not None
    route, _, room = websocket.request.path.strip("/").partition("/")  # /{route}/{room}
    connections = ROOMS[f"{route}/{room}"]
    connections.add(websocket)
    try:
        async for message in websocket:
            if route == "send-loop":
                # Pitfall 1 and 2: the websockets tutorial's first version, before it introduces broadcast().
                for connection in connections:
                    await connection.send(message)
            elif route == "blocking":
                save(message)  # Pitfall 5: a blocking call freezes every connection of the process
                broadcast(connections, message)
            elif route == "blocking-fixed":
                await asyncio.to_thread(save, message)  # the fix: the call runs in a thread; the loop goes on
                broadcast(connections, message)
    finally:
        connections.remove(websocket)


async def main() -> None:
    host, port = os.environ.get("CHAT_HOST", "127.0.0.1"), int(os.environ.get("CHAT_PORT", "8023"))
    async with serve(handler, host, port) as server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
