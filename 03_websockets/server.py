"""Chapter 3: the chat protocol on the websockets library alone, without a web framework."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import mimetypes
import signal
from collections.abc import Callable, Mapping
from email.utils import formatdate
from functools import partial
from http import HTTPStatus
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit
from weakref import WeakKeyDictionary

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed, InvalidOrigin
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import Event, State
from websockets.typing import Origin

from bench import bench, bench_route
from chatcore.handshake import Handshake, Refusal, authenticate, check_request, log_refusal, origin_refused
from chatcore.hub import Hub
from chatcore.limits import HeadCheck, raise_descriptor_limit, refusal_body
from chatcore.logs import printable, setup_logging
from chatcore.metrics import render
from chatcore.protocol import BINARY_FRAME, SLOW_CONSUMER, Close, closed_by_peer
from chatcore.session import CLOSE_TIMEOUT, Session
from chatcore.settings import Settings
from chatcore.web import INDEX_HTML, find_client_file, grant_token, health

IMPL = "websockets"
CHAT_PATH = "/ws/chat/"
logger = logging.getLogger("chat")
access_log = logging.getLogger("chat.access")

# Limits
READ_CHUNK = 2**14  # bytes of a read that the library parses at once
# Timeouts
OPEN_TIMEOUT = 10.0  # for the HTTP request and the opening handshake
SHUTDOWN_GRACE = 1.0  # after hub.shutdown(): how long the connection handlers get to finish


async def create_server(settings: Settings, hub: Hub) -> Server:
    """Listen on CHAT_HOST:CHAT_PORT: HTTP in ``process_request``, chat connections in ``chat``."""
    handshakes: WeakKeyDictionary[ServerConnection, Handshake] = WeakKeyDictionary()  # process_request → chat
    baselines: WeakKeyDictionary[ServerConnection, str] = WeakKeyDictionary()  # → bench, with its room

    async def process_request(websocket: ServerConnection, request: Request) -> Response | None:
        # The library refuses lines over 8 KB and more than 128 headers itself; SPEC.md §4.1 allows 100, 16 KB in all.
        too_large = HeadCheck().feed(request.serialize())
        if too_large is not None:
            return respond(too_large, refusal_body(too_large))
        url = urlsplit(request.path)
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        if settings.bench_endpoints and (room := bench_route(url.path)) is not None:
            baselines[websocket] = room
            return None
        if not url.path.startswith(CHAT_PATH):
            return await http_response(request.method, url.path, query, settings)
        room = unquote(url.path.removeprefix(CHAT_PATH))
        try:
            user = authenticate(settings, query, parse_cookies(request.headers))
            handshakes[websocket] = check_request(user=user, room=room, query=query)
        except Refusal as refusal:
            log_refusal(url.path, refusal)
            return forbidden()
        return None  # the library goes on with the handshake, checking Origin against `origins`

    async def process_response(websocket: ServerConnection, request: Request, response: Response) -> Response:
        host, port = websocket.remote_address[:2]
        method, path = printable(request.method), printable(request.path)
        if websocket.protocol.eof_sent:
            # Bytes came after the request (HTTP pipelining, or junk): the library took them for WebSocket
            # frames, refused those and ended the connection, and would now fail on sending the response.
            websocket.transport.abort()
            await websocket.wait_closed()  # then the library sends nothing
            access_log.info('%s:%s - "%s %s" dropped: more data followed the request', host, port, method, path)
            return response
        if isinstance(websocket.protocol.handshake_exc, InvalidOrigin):
            # The library refused the Origin and says so in the body. SPEC.md §4: the reason goes to the log.
            log_refusal(urlsplit(request.path).path, origin_refused(request.headers.get("Origin", "")))
            response = forbidden()
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


class ChatConnection(ServerConnection):
    """The library's connection, with its close timeout applied when the client ends the connection, too.

    When a client sends a close frame (or breaks the protocol, and the library closes with 1009, 1007 or 1002),
    or half-closes TCP, the library waits for the TCP connection to end. It gives up after ``close_timeout``
    only while a ``send()`` or ``close()`` is waiting; ``recv()`` waits for ever. So a client that reads
    nothing more would keep its place in the room until the heartbeat timeout.

    And a slow consumer that sends pings: the library answers them without flow control, even after a close
    frame has gone, so a client that sends pings and reads nothing would make the write buffer grow without
    bound. Once the pongs buffered while the write buffer is above ``write_limit`` exceed ``write_limit``
    themselves, nothing more is read from the connection, and it is closed with 4001 (unless a close frame has
    gone already) and aborted after ``close_timeout`` (SPEC.md §13.4).
    """

    abort_timer: asyncio.TimerHandle | None = None
    flush_handle: asyncio.Handle | None = None  # write_now's frames are written by flush(), once per turn
    unflushed = 0  # bytes of frames write_now() handed to the protocol since the last flush()
    on_slow_consumer: Callable[[], None] | None = None  # chat() sets it: the session's close with 4001
    unsent_pongs = 0  # bytes of pongs written while the write buffer was above write_limit

    def process_event(self, event: Event) -> None:
        super().process_event(event)  # the library wrote the pong already, in data_received
        if isinstance(event, Frame) and event.opcode is Opcode.PING and self.paused:
            self.unsent_pongs += 2 + len(event.data)  # a pong's header is 2 bytes (its payload is <= 125)
            if self.unsent_pongs > self.write_limit_high and self.transport.is_reading():
                self.close_slow_consumer()

    def resume_writing(self) -> None:
        super().resume_writing()
        self.unsent_pongs = 0  # the client reads

    def write_now(self, frame: str) -> bool:
        """Write a text frame without waiting, as ``broadcast()`` does, if the connection takes it: open, and its
        write buffer below ``write_limit``. Otherwise the session queues it for ``write_frames``, whose ``send()``
        waits for the client to read (SPEC.md §13.4). The frames of one turn of the event loop go out together,
        in one system call, right after it (``flush``), or at once past ``write_limit``."""
        if self.protocol.state is not State.OPEN or self.paused or self.send_in_progress or self.transport.is_closing():
            return False
        data = frame.encode()
        self.protocol.send_text(data)  # into the protocol's buffer, which any send_data() writes, in order
        self.unflushed += len(data)
        if self.unflushed > self.write_limit_high:
            self.flush()  # the transport pauses if the client is behind: the next frames go to the queue
        elif self.flush_handle is None:
            self.flush_handle = self.loop.call_soon(self.flush)
        return True

    def flush(self) -> None:
        self.flush_handle, self.unflushed = None, 0
        self.send_data()

    def send_data(self) -> None:
        """The library's, but what the protocol holds goes out in one system call, not one per frame: the library
        runs it after every read, and a member's frames of a turn went out one by one when its client sent
        something first (2.7 deliveries per system call in a room of 50; 16 in chapter 1)."""
        frames: list[bytes] = []
        for data in self.protocol.data_to_send():
            if data:
                frames.append(data)
                continue
            self.transport.write(b"".join(frames))  # then the end of the stream (an empty chunk): as the library
            frames = []
            if self.transport.can_write_eof():
                with contextlib.suppress(Exception):  # the library's: write_eof() doesn't say what it raises
                    self.transport.write_eof()
            else:
                self.transport.close()
        if frames:
            self.transport.write(b"".join(frames))

    def close_slow_consumer(self) -> None:
        self.protocol.fail(SLOW_CONSUMER.code, SLOW_CONSUMER.reason)  # the close frame if none went yet; then
        self.send_data()  # nothing more is parsed. Behind what the client has not read: it sees it if it reads
        self.transport.pause_reading()
        if self.close_timeout is not None:
            if self.close_deadline is None:
                self.close_deadline = self.loop.time() + self.close_timeout
            self.abort_at(self.close_deadline)
        if self.on_slow_consumer is not None:
            self.on_slow_consumer()  # the session ends at once: its leave is announced (SPEC.md §13.4)

    def data_received(self, data: bytes) -> None:
        # 16 KiB at a time: a 256 KiB read of 6-byte pings is 40,000 frames parsed at once, megabytes of them, and
        # a flood of them is noticed (process_event) only after each read is done.
        for start in range(0, len(data), READ_CHUNK):
            if self.transport.is_closing():
                return
            super().data_received(data[start : start + READ_CHUNK])
        if self.close_deadline is not None:  # a close is under way
            self.abort_at(self.close_deadline)

    def eof_received(self) -> None:
        super().eof_received()
        if self.close_timeout is not None:
            self.abort_at(self.loop.time() + self.close_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self.abort_timer is not None:
            self.abort_timer.cancel()

    def abort_at(self, deadline: float) -> None:
        if self.abort_timer is None:
            self.abort_timer = self.loop.call_at(deadline, self.transport.abort)


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


async def receive(websocket: ServerConnection) -> str | bytes:
    """The next message, like ``recv()`` but however many fragments it comes in. ``recv()`` closes with 1009 a
    message of more than 4096 fragments (WEBSOCKETS_MAX_FRAGMENTS), however small; ``max_size`` already bounds
    its bytes (SPEC.md §13.1), and empty fragments are not kept."""
    parts: list[str | bytes] = []
    async for part in websocket.recv_streaming():
        if part or not parts:  # the first part, even empty, tells text from binary
            parts.append(part)
    return parts[0][:0].join(parts)  # type: ignore[arg-type]


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


def close_code(closed: ConnectionClosed) -> int | None:
    """The code that ended the connection: the library's own when it closed first (1009, 1007 or 1002 for a
    frame it refused), otherwise the client's, or None when the TCP connection ended without a close frame."""
    if closed.sent is not None and not closed.rcvd_then_sent:
        return closed.sent.code
    return closed.rcvd.code if closed.rcvd is not None else None


# HTTP. The library answers one request per connection, then closes it: no keep-alive.


async def http_response(method: str, path: str, query: Mapping[str, str], settings: Settings) -> Response:
    """The answer to a request for anything but a chat WebSocket (SPEC.md §2)."""
    if method != "GET":
        return respond(HTTPStatus.METHOD_NOT_ALLOWED, b"Only GET is supported.\n", ("Allow", "GET"))
    match path:
        case "/":
            return await file_response(INDEX_HTML)
        case "/healthz":
            return json_response(HTTPStatus.OK, health(IMPL))
        case "/api/token":
            grant = grant_token(query.get("user"), settings)
            response = json_response(HTTPStatus(grant.status), grant.body)
            if grant.cookie is not None:
                response.headers["Set-Cookie"] = grant.cookie.header()
            return response
        case "/metrics":
            body, content_type = render()
            return respond(HTTPStatus.OK, body, ("Content-Type", content_type))
        case _ if path.startswith("/client/"):
            file = await asyncio.to_thread(find_client_file, unquote(path.removeprefix("/client/")))
            if file is not None:
                return await file_response(file)
    return respond(HTTPStatus.NOT_FOUND, b"Not found.\n")


def respond(status: HTTPStatus, body: bytes, *headers: tuple[str, str]) -> Response:
    """An HTTP response for ``process_request`` (plain text unless ``headers`` name a Content-Type)."""
    fields = Headers([("Date", formatdate(usegmt=True)), ("Connection", "close"), *headers])
    if "Content-Type" not in fields:
        fields["Content-Type"] = "text/plain; charset=utf-8"
    fields["Content-Length"] = str(len(body))
    return Response(status.value, status.phrase, fields, body)


def json_response(status: HTTPStatus, body: object) -> Response:
    return respond(status, orjson.dumps(body), ("Content-Type", "application/json"))


async def file_response(path: Path) -> Response:
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if content_type.startswith("text/"):
        content_type += "; charset=utf-8"
    body = await asyncio.to_thread(path.read_bytes)  # off the event loop, like any file I/O
    return respond(HTTPStatus.OK, body, ("Content-Type", content_type))


def forbidden() -> Response:
    """The answer to every refused handshake: the reason is in the server log, not in the response."""
    return respond(HTTPStatus.FORBIDDEN, b"Forbidden.\n")


def parse_cookies(headers: Headers) -> dict[str, str]:
    """The request's cookies, read as leniently as browsers write them. (``http.cookies.SimpleCookie`` gives
    up on the whole header at the first cookie it finds invalid, and localhost collects cookies from every
    app you develop.)"""
    cookies = {}
    for header in headers.get_all("Cookie"):
        for pair in header.split(";"):
            name, _, value = pair.partition("=")
            cookies[name.strip()] = value.strip()
    return cookies


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
