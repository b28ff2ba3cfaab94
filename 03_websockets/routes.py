"""The HTTP that a web framework would do (SPEC.md §2, §4.1): the library hands every request to server.py's
``process_request``, which answers with these whatever is not a WebSocket handshake. The library answers one
request per connection, then closes it: no keep-alive.

Every response starts as the library's ``respond()``: plain text, with Date, ``Connection: close`` and its
Content-Length; ``respond_bytes()`` gives it another body and Content-Type."""

from __future__ import annotations

import asyncio
import mimetypes
from collections.abc import Mapping
from http import HTTPStatus
from pathlib import Path
from urllib.parse import unquote

import orjson
from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from chatcore.limits import HeadCheck, refusal_body
from chatcore.metrics import render
from chatcore.settings import Settings
from chatcore.web import INDEX_HTML, find_client_file, grant_token, health

IMPL = "websockets"


async def http_response(
    websocket: ServerConnection, method: str, path: str, query: Mapping[str, str], settings: Settings
) -> Response:
    """The answer to a request for anything but a chat WebSocket (SPEC.md §2)."""
    if method != "GET":
        response = websocket.respond(HTTPStatus.METHOD_NOT_ALLOWED, "Only GET is supported.\n")
        response.headers["Allow"] = "GET"
        return response
    match path:
        case "/":
            return await file_response(websocket, INDEX_HTML)
        case "/healthz":
            return json_response(websocket, HTTPStatus.OK, health(IMPL))
        case "/api/token":
            grant = grant_token(query.get("user"), settings)
            response = json_response(websocket, HTTPStatus(grant.status), grant.body)
            if grant.cookie is not None:
                response.headers["Set-Cookie"] = grant.cookie.header()
            return response
        case "/metrics":
            body, content_type = render()
            return respond_bytes(websocket, HTTPStatus.OK, body, content_type)
        case _ if path.startswith("/client/"):
            file = await asyncio.to_thread(find_client_file, unquote(path.removeprefix("/client/")))
            if file is not None:
                return await file_response(websocket, file)
    return websocket.respond(HTTPStatus.NOT_FOUND, "Not found.\n")


def head_too_large(websocket: ServerConnection, request: Request) -> Response | None:
    """414 or 431 for a request head over SPEC.md §4.1's limits (100 headers, 16 KB in all), or None. The library
    refuses lines over 8 KB and more than 128 headers itself (tests/test_04_handshake.py::test_oversized_head)."""
    too_large = HeadCheck().feed(request.serialize())
    return None if too_large is None else websocket.respond(too_large, refusal_body(too_large).decode())


def forbidden(websocket: ServerConnection) -> Response:
    """The answer to every refused handshake: the reason is in the server log, not in the response."""
    return websocket.respond(HTTPStatus.FORBIDDEN, "Forbidden.\n")


def json_response(websocket: ServerConnection, status: HTTPStatus, body: object) -> Response:
    return respond_bytes(websocket, status, orjson.dumps(body), "application/json")


async def file_response(websocket: ServerConnection, path: Path) -> Response:
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if content_type.startswith("text/"):
        content_type += "; charset=utf-8"
    body = await asyncio.to_thread(path.read_bytes)  # off the event loop, like any file I/O
    return respond_bytes(websocket, HTTPStatus.OK, body, content_type)


def respond_bytes(websocket: ServerConnection, status: HTTPStatus, body: bytes, content_type: str) -> Response:
    """The library's ``respond()``, with ``body`` of type ``content_type`` instead of plain text."""
    response = websocket.respond(status, "")
    del response.headers["Content-Length"], response.headers["Content-Type"]  # setting a header adds one more
    response.headers.update({"Content-Length": str(len(body)), "Content-Type": content_type})
    response.body = body
    return response


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
