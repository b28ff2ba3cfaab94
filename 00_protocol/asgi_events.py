"""ASGI, seen from inside: an application that echoes, and prints every event a server hands it and it answers."""

# The primer (PRIMER.md) runs it: .venv/bin/python 00_protocol/asgi_events.py
# It starts uvicorn on a free port, with `app` below, then makes one HTTP request and one WebSocket connection
# to it, and stops. What it prints is the whole conversation between uvicorn and the application.

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import httpx2
import uvicorn
from websockets.asyncio.client import connect

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
finished = asyncio.Event()  # set when the application has seen the WebSocket's end


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """An ASGI application: called once per connection, with what it is (scope) and two channels of events."""
    if scope["type"] == "lifespan":
        return  # uvicorn asks about start-up and shutdown; this app has nothing to do then
    print(f"scope    type={scope['type']!r} path={scope['path']!r} headers={len(scope['headers'])}")

    async def log_receive() -> Message:
        message: Message = await receive()
        print(f"receive  {message}")
        return message

    async def log_send(message: Message) -> None:
        print(f"send     {message}")
        await send(message)

    if scope["type"] == "http":
        await log_receive()  # the request's body (here, none)
        await log_send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await log_send({"type": "http.response.body", "body": b"hello"})
    elif scope["type"] == "websocket":
        await log_receive()  # websocket.connect: the handshake is waiting for our answer
        await log_send({"type": "websocket.accept"})  # now uvicorn sends "101 Switching Protocols"
        while (message := await log_receive())["type"] == "websocket.receive":
            await log_send({"type": "websocket.send", "text": message["text"]})
        finished.set()  # websocket.disconnect: the connection is gone


async def main() -> None:
    """Serve ``app`` with uvicorn on a free port, be its client once over HTTP and once over a WebSocket."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # a free port
    sock.listen()  # connections wait here until uvicorn, starting, accepts them
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", ws_per_message_deflate=False))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    print("--- an HTTP request: GET /hello")
    async with httpx2.AsyncClient() as http:
        await http.get(f"http://127.0.0.1:{port}/hello")
    print("--- a WebSocket: connect to /echo, send 'hi', close")
    async with connect(f"ws://127.0.0.1:{port}/echo") as websocket:
        await websocket.send("hi")
        await websocket.recv()
    async with asyncio.timeout(5):
        await finished.wait()  # the application printed the disconnect
    server.should_exit = True
    await serving


if __name__ == "__main__":
    asyncio.run(main())
