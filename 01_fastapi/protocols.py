"""uvicorn's connections, with what SPEC.md needs and uvicorn lacks: limits and a deadline on request heads."""

from __future__ import annotations

import asyncio
import logging
from http import HTTPStatus
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from chatcore.limits import HEAD_TIMEOUT, LINGER, HeadCheck, refusal

logger = logging.getLogger("chat")


class HttpProtocol(H11Protocol):
    """uvicorn's HTTP/1.1 connection (h11), with SPEC.md §4.1's limits on every request head.

    uvicorn waits for ever for a head that stops half-way (a socket each, until the process runs out of
    descriptors), and hands a WebSocket upgrade with a too long line to the websockets library, whose 414 it never
    sends. Here each head must arrive within HEAD_TIMEOUT of the connection opening (or, on a connection kept
    alive, of its first byte), and a head over the limits is refused before h11 or websockets see it.
    """

    head: HeadCheck
    deadline: asyncio.TimerHandle | None = None
    refused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self.head = HeadCheck()
        self.deadline = self.loop.call_later(HEAD_TIMEOUT, self.too_slow)

    def data_received(self, data: bytes) -> None:
        if self.refused:
            return  # the rest of a refused head: dropped
        if not self.head.done:
            if self.deadline is None:  # the first byte of a head after a response
                self.deadline = self.loop.call_later(HEAD_TIMEOUT, self.too_slow)
            status = self.head.feed(data)
            if status is not None:
                self.refuse(status)
                return
            if self.head.done:
                self.deadline.cancel()
        super().data_received(data)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self.head, self.deadline = HeadCheck(), None  # the next request on this connection: uvicorn's keep-alive
        # timeout covers the wait for its first byte

    def connection_lost(self, exc: Exception | None) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
        super().connection_lost(exc)

    def too_slow(self) -> None:
        logger.debug("%s:%s - request head not complete after %g s: closed", *self.client_address(), HEAD_TIMEOUT)
        self.transport.close()

    def refuse(self, status: HTTPStatus) -> None:
        logger.info("%s:%s - request head refused: %d %s", *self.client_address(), status.value, status.phrase)
        if self.deadline is not None:
            self.deadline.cancel()
        self.refused = True
        self.transport.write(refusal(status))
        self.transport.write_eof()  # the client sees the end of the response, and closes
        self.deadline = self.loop.call_later(LINGER, self.transport.close)

    def client_address(self) -> tuple[Any, Any]:
        return self.client or ("-", "-")
