"""Chapter 1: the chat protocol on FastAPI, served by uvicorn."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import asdict
from functools import partial

import uvicorn
from fastapi import FastAPI, HTTPException, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.websockets import WebSocketState

from bench import add_bench_routes
from chatcore.handshake import Refusal, check_handshake, log_refusal
from chatcore.hub import Hub
from chatcore.limits import raise_descriptor_limit
from chatcore.logs import setup_logging
from chatcore.metrics import render
from chatcore.protocol import BINARY_FRAME, Close, closed_by_peer
from chatcore.session import Session, find_write_now
from chatcore.settings import Settings
from chatcore.web import INDEX_HTML, find_client_file, grant_token, health
from uvicorn_fixes import ChatServer, ClientFaultsWithoutTraceback, HttpProtocol, WebSocketProtocol

IMPL = "fastapi"


def create_app(settings: Settings) -> FastAPI:
    hub = Hub(settings)
    app = FastAPI(title="Chat, chapter 1: FastAPI")
    app.state.hub = hub

    @app.get("/")
    async def index() -> FileResponse:
        return FileResponse(INDEX_HTML)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return health(IMPL)

    @app.get("/api/token")
    async def token(user: str | None = None) -> JSONResponse:
        grant = grant_token(user, settings)
        response = JSONResponse(grant.body, status_code=grant.status)
        if grant.cookie is not None:
            response.set_cookie(**asdict(grant.cookie))
        return response

    @app.get("/metrics")
    async def metrics() -> Response:
        body, content_type = render()
        return Response(body, media_type=content_type)

    @app.websocket("/ws/chat/{room}")
    async def chat(websocket: WebSocket, room: str) -> None:
        try:
            handshake = check_handshake(
                settings,
                room=room,
                query=websocket.query_params,
                cookies=websocket.cookies,
                origin=websocket.headers.get("origin"),
                port=websocket.scope["server"][1],
            )
        except Refusal as refusal:
            log_refusal(websocket.scope["path"], refusal)
            await websocket.close()  # before accept: uvicorn answers HTTP 403
            return
        await websocket.accept()
        session = await hub.connect(handshake)
        await session.run(
            read_frames(websocket, session),
            write_frames(websocket, session),
            partial(send_close, websocket),
            find_write_now(websocket.scope),  # uvicorn's send() without the await (uvicorn_fixes.py)
        )

    if settings.bench_endpoints:
        add_bench_routes(app)

    @app.get("/client/{name}")
    async def client_file(name: str) -> FileResponse:
        path = find_client_file(name)
        if path is None:
            raise HTTPException(404)
        return FileResponse(path)

    return app


async def read_frames(websocket: WebSocket, session: Session) -> None:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            session.close(closed_by_peer(message.get("code")))
            return
        if message.get("text") is not None:
            await session.receive(message["text"])
        else:
            session.close(BINARY_FRAME)
            return


async def write_frames(websocket: WebSocket, session: Session) -> None:
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            await websocket.send_text(await session.next_frame())
    await session.ended  # the client is gone: read_frames will say how


async def send_close(websocket: WebSocket, close: Close) -> None:
    if websocket.application_state is WebSocketState.CONNECTED:  # not if a send already found it closed
        with contextlib.suppress(WebSocketDisconnect):
            await websocket.close(close.code, close.reason)


def main() -> None:
    settings = Settings.load(default_port=8001)
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        http=HttpProtocol,  # with limits and a deadline on request heads (uvicorn_fixes.py)
        ws=WebSocketProtocol,  # uvicorn's "websockets-sansio", with backpressure on pongs (uvicorn_fixes.py)
        ws_per_message_deflate=False,
        loop="asyncio",  # asyncio's own event loop, as in the other chapters ("auto" would take uvloop if installed)
        log_level=settings.log_level,
        # The client's address behind a proxy (SPEC.md §16.1): uvicorn's default trusts X-Forwarded-For from 127.0.0.1
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=[str(network) for network in settings.trusted_proxies],
        # Limits
        ws_max_size=settings.max_message_bytes,
        # Timeouts
        ws_ping_interval=None,  # the protocol's own heartbeat replaces protocol-level pings (SPEC.md §11)
        timeout_graceful_shutdown=2,
    )
    setup_logging(settings, "uvicorn.error", "uvicorn.access")
    logging.getLogger("uvicorn.error").addFilter(ClientFaultsWithoutTraceback())
    raise_descriptor_limit()
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises Ctrl+C after its clean shutdown
        ChatServer(config, app.state.hub).run()


if __name__ == "__main__":
    main()
