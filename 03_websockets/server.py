"""Chapter 3: the chat protocol on the websockets library alone, without a web framework.

This file is the glue between the library and chatcore. What the library needed besides is in routes.py (the HTTP
a web framework would do) and connection.py (the library's connection, with what SPEC.md needs and it lacks)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from functools import partial
from urllib.parse import parse_qsl, unquote, urlsplit
from weakref import WeakKeyDictionary

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed, InvalidOrigin
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.typing import Origin

from bench import bench, bench_route
from chatcore.handshake import Handshake, Refusal, authenticate, check_request, log_refusal, origin_refused
from chatcore.hub import Hub
from chatcore.limits import raise_descriptor_limit
from chatcore.logs import printable, setup_logging
from chatcore.protocol import BINARY_FRAME, SLOW_CONSUMER, Close, closed_by_peer
from chatcore.session import CLOSE_TIMEOUT, Session
from chatcore.settings import Settings
from chatcore.web import client_address
from connection import ChatConnection, abort_if_data_followed, close_code, receive
from routes import forbidden, head_too_large, http_response, parse_cookies

CHAT_PATH = "/ws/chat/"
logger = logging.getLogger("chat")
access_log = logging.getLogger("chat.access")

# Timeouts
OPEN_TIMEOUT = 10.0  # for the HTTP request and the opening handshake
SHUTDOWN_GRACE = 1.0  # after hub.shutdown(): how long the connection handlers get to finish


async def create_server(settings: Settings, hub: Hub) -> Server:
    """Listen on CHAT_HOST:CHAT_PORT: HTTP in ``process_request``, chat connections in ``chat``."""
    handshakes: WeakKeyDictionary[ServerConnection, Handshake] = WeakKeyDictionary()  # process_request → chat
    baselines: WeakKeyDictionary[ServerConnection, str] = WeakKeyDictionary()  # → bench, with its room

    async def process_request(websocket: ServerConnection, request: Request) -> Response | None:
        if (too_large := head_too_large(websocket, request)) is not None:
            return too_large
        url = urlsplit(request.path)
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        if settings.bench_endpoints and (room := bench_route(url.path)) is not None:
            baselines[websocket] = room
            return None
        if not url.path.startswith(CHAT_PATH):
            return await http_response(websocket, request.method, url.path, query, settings)
        room = unquote(url.path.removeprefix(CHAT_PATH))
        try:
            user = authenticate(settings, query, parse_cookies(request.headers))
            handshakes[websocket] = check_request(user=user, room=room, query=query)
        except Refusal as refusal:
            log_refusal(unquote(url.path), refusal)
            return forbidden(websocket)
        return None  # the library goes on with the handshake, checking Origin against `origins`

    async def process_response(websocket: ServerConnection, request: Request, response: Response) -> Response:
        forwarded = request.headers.get_all("X-Forwarded-For")
        host, port = client_address(settings, websocket.remote_address[:2], forwarded)  # SPEC.md §16.1
        host, method, path = printable(host), printable(request.method), printable(request.path)
        if await abort_if_data_followed(websocket):  # then the library sends nothing
            access_log.info('%s:%s - "%s %s" dropped: more data followed the request', host, port, method, path)
            return response
        if isinstance(websocket.protocol.handshake_exc, InvalidOrigin):
            # The library refused the Origin and says so in the body. SPEC.md §4: the reason goes to the log.
            log_refusal(unquote(urlsplit(request.path).path), origin_refused(request.headers.get("Origin", "")))
            response = forbidden(websocket)
        access_log.info('%s:%s - "%s %s" %d', host, port, method, path, response.status_code)
        return response

    async def chat(websocket: ServerConnection) -> None:
        if websocket in baselines:
            await bench(websocket, baselines.pop(websocket))
            return
        session = await hub.connect(handshakes.pop(websocket))
        assert isinstance(websocket, ChatConnection)
        websocket.on_slow_consumer = partial(session.close, SLOW_CONSUMER)
        await session.run(
            read_frames(websocket, session),
            write_frames(websocket, session),
            partial(send_close, websocket),
            websocket.write_now,  # what broadcast() does, when the connection takes the frame at once
        )

    origins: list[Origin | None] = [None]  # no Origin: not a browser's request, so it passes (SPEC.md §4)
    server = await serve(
        chat,
        settings.host,
        settings.port,
        origins=origins,
        process_request=process_request,
        process_response=process_response,
        create_connection=ChatConnection,
        compression=None,  # permessage-deflate costs memory per connection; off in every chapter
        # Timeouts
        open_timeout=OPEN_TIMEOUT,
        ping_interval=None,  # the protocol's own heartbeat replaces protocol-level pings (SPEC.md §11)
        ping_timeout=None,
        close_timeout=CLOSE_TIMEOUT,  # a client behind on reading still gets its close frame (SPEC.md §13.4)
        # Limits
        max_size=settings.max_message_bytes,  # bigger frames are closed with 1009 (SPEC.md §13.1)
        max_queue=16,  # frames read ahead of read_frames; then reading pauses until it catches up
        write_limit=2**15,  # bytes buffered for the socket before send() waits: what makes a slow consumer
        # Passed on to loop.create_server: bind now, start accepting once `origins` is complete.
        start_serving=False,
    )
    for sock in server.sockets:  # the port is known only now if CHAT_PORT is 0
        origins.extend(Origin(origin) for origin in settings.origins_for(sock.getsockname()[1]))
    await server.start_serving()
    return server


async def read_frames(websocket: ServerConnection, session: Session) -> None:
    while True:
        try:
            message = await receive(websocket)
        except ConnectionClosed as closed:
            session.close(closed_by_peer(close_code(closed)))
            return
        if isinstance(message, str):
            await session.receive(message)
        else:
            session.close(BINARY_FRAME)
            return


async def write_frames(websocket: ServerConnection, session: Session) -> None:
    while True:
        frame = await session.next_frame()
        # Once a close frame has gone either way, nothing may follow it: the frame is dropped. (send() would
        # wait for the end of the closing handshake instead, while the queue overflows.)
        if websocket.state is State.OPEN:
            with contextlib.suppress(ConnectionClosed):  # the client is gone: read_frames will say how
                await websocket.send(frame)


async def send_close(websocket: ServerConnection, close: Close) -> None:
    await websocket.close(close.code, close.reason)  # waits (close_timeout at most) for the client's answer


async def shutdown(server: Server, hub: Hub) -> None:
    """Stop accepting, close every chat connection with 1001 (SPEC.md §14), then drop whatever is left."""
    server.close(close_connections=False)  # stop listening; a handshake still under way gets HTTP 503
    await hub.shutdown()  # 1001 to every chat connection; waits (2 s at most) until the close frames are out
    for websocket in server.all_connections:
        websocket.transport.abort()  # a client that neither reads nor answers the close: no more waiting
    with contextlib.suppress(TimeoutError):
        # The handlers finish at once; one still waiting for a half-sent HTTP request is cancelled on exit.
        async with asyncio.timeout(SHUTDOWN_GRACE):
            await server.wait_closed()


async def run(settings: Settings) -> None:
    """Serve until SIGTERM or SIGINT, then shut down."""
    hub = Hub(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        server = await create_server(settings, hub)
    except OSError as exc:  # typically: the port is taken
        raise SystemExit(f"Cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}") from None
    for sock in server.sockets:
        logger.info("Chat, chapter 3 (websockets): http://%s:%s", *sock.getsockname()[:2])
    await stop.wait()
    logger.info("Shutting down")
    await shutdown(server, hub)


def main() -> None:
    settings = Settings.load(default_port=8003)
    setup_logging(settings)
    raise_descriptor_limit()
    if settings.log_level != "debug":  # one access-log line per request says more than the library's two
        logging.getLogger("websockets.server").setLevel(logging.WARNING)
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
