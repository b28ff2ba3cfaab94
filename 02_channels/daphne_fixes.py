"""What SPEC.md needs and daphne lacks, each in a subclass of daphne's, autobahn's or Twisted's own: backpressure on
``send()`` (``WriteBuffer``), close codes with their reasons, a client's close heard at once, bounded pongs, limits
and a deadline on request heads (``HttpChannel``), a write without waiting (``write_now``), 1001 on shutdown, and an
access log through Python's logging. server.py and ``manage.py runserver`` start ``ChatServer``; nothing else refers
to them."""

from __future__ import annotations

import daphne.server  # first: it installs Twisted's asyncio reactor, and Twisted minds the order

# isort: split
import asyncio
import logging
import math
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from autobahn.util import encode_truncate
from daphne.access import AccessLogGenerator
from daphne.ws_protocol import WebSocketProtocol
from django.conf import settings as django_settings
from twisted.internet import defer
from twisted.internet.interfaces import IPushProducer
from twisted.internet.protocol import connectionDone
from twisted.internet.tcp import Port
from twisted.python.failure import Failure
from twisted.web import http
from zope.interface import implementer

from chat.hub import get_hub
from chatcore.hub import SHUTDOWN_TIMEOUT
from chatcore.limits import HeadGuard, refusal
from chatcore.protocol import SLOW_CONSUMER
from chatcore.session import CLOSE_TIMEOUT, WRITE_NOW
from chatcore.web import client_address

logger = logging.getLogger("chat")


@implementer(IPushProducer)
class WriteBuffer:
    """Twisted tells its producer when a connection's write buffer is full (pause) and empty again (resume):
    this one turns that into an event that asyncio code can wait on."""

    def __init__(self) -> None:
        self.has_room = asyncio.Event()
        self.has_room.set()
        self.unsent_pongs = 0  # bytes of pongs written while the buffer was full (see ChatWebSocketProtocol.onPing)

    def pauseProducing(self) -> None:  # Twisted's names
        self.has_room.clear()

    def resumeProducing(self) -> None:
        self.has_room.set()
        self.unsent_pongs = 0  # the client reads

    def stopProducing(self) -> None:  # the connection is gone: let waiting writers go
        self.has_room.set()


class HttpChannel(http.HTTPChannel):  # type: ignore[misc]
    """Twisted's HTTP/1.1 connection, with SPEC.md §4.1's limits on every request head.

    Twisted waits for a head as long as a byte arrives every minute (its idle timeout), and answers a head over its
    own limits (16 KB, 500 headers) with 400. Here each head must arrive within HEAD_TIMEOUT of the connection
    opening (or, on a connection kept alive, of its first byte), and a head over the limits is refused with 414 or
    431 before Twisted parses it. (With HTTP/2 installed, Twisted would wrap its channel to negotiate the version:
    daphne's HTTP/2 needs the http2 and tls extras, which this course doesn't install.)
    """

    guard: HeadGuard

    def connectionMade(self) -> None:
        """Start the head's deadline: Twisted has none (tests/test_04_handshake.py::test_slow_head_is_closed).

        Twisted's idle timeout only ends a connection that sends nothing for a minute: a head may trickle in."""
        super().connectionMade()
        self.guard = HeadGuard(
            self.callLater, too_slow=self.too_slow, refuse=self.refuse, abort=self.transport.abortConnection
        )

    def dataReceived(self, data: bytes) -> None:
        """Check the head first: Twisted answers 400, not 414 or 431 (test_04_handshake.py::test_oversized_head)."""
        if self.guard.feed(data):
            super().dataReceived(data)

    def requestDone(self, request: http.Request) -> None:
        """The next head on a kept-alive connection gets the same check (no test sends two requests on one yet)."""
        super().requestDone(request)
        self.guard.next_request()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """Twisted's, and the head's deadline cancelled: a closed connection keeps no timer (no test)."""
        self.guard.cancel()
        super().connectionLost(reason)

    def too_slow(self) -> None:
        self.transport.loseConnection()

    def refuse(self, status: HTTPStatus) -> None:
        peer = self.transport.getPeer()
        logger.info("%s:%s - request head refused: %d %s", peer.host, peer.port, status.value, status.phrase)
        self.transport.write(refusal(status))
        self.transport.loseWriteConnection()  # the client sees the end of the response, and closes


class ChatWebSocketProtocol(WebSocketProtocol):  # type: ignore[misc]  # daphne has no type hints
    """daphne's WebSocket connection, with what SPEC.md needs and daphne lacks:

    - closing with the application's code *and reason* (daphne drops the reason, and autobahn's ``sendClose``
      refuses 1001, 1003 and 1008);
    - a write buffer that the application can wait on while the client is not reading;
    - the client's close frame reaches the application at once, and a close that waits for a client that does
      not read ends after CLOSE_TIMEOUT (autobahn would wait for ever);
    - a client that sends pings and reads nothing is closed with 4001 (autobahn answers every ping at once, and
      the pongs would pile up in Twisted's write buffer without bound);
    - a close frame that autobahn refuses (an invalid code, a reason that is not UTF-8) is answered with 1002 or
      1007 and an orderly end of the TCP connection, not a reset.
    """

    muted: bool = False  # daphne's: set once the application must hear nothing more from this connection
    abort_timer: asyncio.TimerHandle | None = None  # dropConnection's, cancelled once closed

    def connectionMade(self) -> None:
        """Watch the write buffer: daphne's send() never waits for it (tests/test_13_limits.py::test_slow_consumer)."""
        super().connectionMade()
        self.write_buffer = WriteBuffer()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # twisted.web registered its HTTP channel as the transport's producer before the upgrade: take over.
        self.transport.unregisterProducer()
        self.transport.registerProducer(self.write_buffer, True)

    def handle_reply(self, message: dict[str, Any]) -> None:
        """Close with the code and reason: autobahn raises on 1003 (test_13_limits.py::test_binary_frame_closes_1003).

        daphne drops the reason, and autobahn's ``sendClose`` raises on 1001, 1003 and 1008."""
        if message["type"] in ("websocket.send", "websocket.close") and self.state in (
            self.STATE_CLOSING,
            self.STATE_CLOSED,
        ):
            return  # a close frame went out already (the client's came first): autobahn would raise
        if message["type"] == "websocket.close" and self.state == self.STATE_OPEN:
            reason = encode_truncate(message.get("reason") or "", 123)  # a close frame holds 123 bytes of reason
            self.sendCloseFrame(code=message.get("code") or 1000, reasonUtf8=reason)
        else:
            super().handle_reply(message)

    def write_now(self, text: str) -> bool:
        """What daphne does for a ``websocket.send`` of text, without the round trip through ``ChatServer``'s
        ``handle_reply``, if the connection takes the frame at once: open, and Twisted's write buffer not full.
        Otherwise the session queues it for ``write_frames``, whose ``send()`` waits for the client to read
        (SPEC.md §13.4). Twisted writes the frames of one turn of the event loop together, after it."""
        if self.state != self.STATE_OPEN or not self.write_buffer.has_room.is_set():  # muted: never OPEN any more
            return False
        self.sendMessage(text.encode())
        return True

    def sendData(self, data: bytes, sync: bool = False, chopsize: int | None = None) -> None:
        """autobahn's, without the debug line it formats for every frame, logged or not (a speed-up, no test).

        autobahn formats that line's arguments (coloured, with click) whether or not debug logging is on, which cost
        a busy room an eighth of its time."""
        if sync or chopsize or self.send_queue or self.logOctets or self.state != self.STATE_OPEN:
            super().sendData(data, sync, chopsize)  # the rare cases, as autobahn does them
            return
        self.transport.write(data)
        self.trafficStats.outgoingOctetsWireLevel += len(data)

    def onCloseFrame(self, code: int | None, reasonRaw: bytes | None) -> bool | None:
        """Tell the application at once: autobahn waits for the TCP connection's end (no test tells: see below).

        autobahn tells daphne of the client's close frame only once the TCP connection is gone, which takes as long
        as the client takes to read what is still buffered for it: without this, the leave of a client behind on
        reading comes when dropConnection's timer aborts the connection, CLOSE_TIMEOUT later, which
        tests/test_15_robustness.py::test_close_while_behind_on_reading still allows."""
        failed = super().onCloseFrame(code, reasonRaw)
        if not failed and not self.muted and hasattr(self, "application_queue"):
            # If autobahn refused the client's close frame, its own code (1002, 1007) says why, as in chapters 1, 3.
            code = self.localCloseCode if self.failedByMe else self.remoteCloseCode or 1005
            self.application_queue.put_nowait({"type": "websocket.disconnect", "code": code})
            self.muted = True  # no more frames for the application, and no second disconnect from onClose
        return failed  # type: ignore[no-any-return]

    def onPing(self, payload: bytes) -> None:
        """Count the pongs the client doesn't read: autobahn has no limit (tests/test_19_load.py::test_ping_flood)."""
        super().onPing(payload)  # autobahn writes the pong at once, whether or not the client reads
        if not self.write_buffer.has_room.is_set() and self.state == self.STATE_OPEN:  # Twisted paused us: full
            self.write_buffer.unsent_pongs += 2 + len(payload)  # a pong's header is 2 bytes (its payload <= 125)
            if self.write_buffer.unsent_pongs > self.transport.bufferSize:
                self.close_slow_consumer()

    def close_slow_consumer(self) -> None:
        """Close with 4001, behind what the client has not read; read nothing more. autobahn aborts the connection
        if the client has not answered after closeHandshakeTimeout (CLOSE_TIMEOUT)."""
        self.transport.pauseProducing()  # Twisted's transport stops reading
        self.sendCloseFrame(code=SLOW_CONSUMER.code, reasonUtf8=SLOW_CONSUMER.reason.encode())  # no more pongs
        if not self.muted and hasattr(self, "application_queue"):
            self.application_queue.put_nowait({"type": "websocket.disconnect", "code": SLOW_CONSUMER.code})
            self.muted = True

    def dropConnection(self, abort: bool = False) -> None:
        """No reset after a clean close, which ends by CLOSE_TIMEOUT (test_15_robustness.py::test_invalid_close_frame).

        A clean close waits until the client has read everything buffered for it: at most CLOSE_TIMEOUT. Clean
        includes the close that autobahn, as a server, aborts (a TCP reset, dropping whatever is still buffered)
        when the client's close frame answers ours: ours may not have left yet, when autobahn has just written it to
        refuse that very close frame (an invalid code or reason: 1002, 1007)."""
        abort = abort and not self.wasClean
        super().dropConnection(abort)
        if not abort and self.abort_timer is None and not self.closed.done():
            self.abort_timer = asyncio.get_running_loop().call_later(CLOSE_TIMEOUT, self.abort_if_still_open)

    def abort_if_still_open(self) -> None:
        if not self.closed.done():
            self.transport.abortConnection()

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        """Free it now: dropConnection's timer holds it 5 s (test_19_load.py::test_nothing_grows_per_connection).

        Also lets go of writers waiting for room, and of ``ChatServer.shutdown`` waiting for the close."""
        super().onClose(wasClean, code, reason)
        if self.abort_timer is not None:
            self.abort_timer.cancel()  # else the loop keeps this connection, closed, for CLOSE_TIMEOUT
        self.write_buffer.stopProducing()
        if not self.closed.done():
            self.closed.set_result(None)


class ChatServer(daphne.server.Server):  # type: ignore[misc]
    """daphne, set up to keep SPEC.md (``manage.py runserver`` uses it too, see its caveat there):

    - ``await send(...)`` of a WebSocket frame waits while the client is not reading, as in uvicorn, so a
      full send queue means a slow consumer (§13.4) instead of memory growing without bound;
    - no protocol-level pings (§11), no 24-hour limit on a connection, frames up to CHAT_MAX_MESSAGE_BYTES
      (§13.1), and a close frame (1002, 1007, 1009) instead of a dropped connection on a broken frame;
    - on SIGTERM or SIGINT, every chat connection is closed with 1001 before daphne cancels them (§14).
    """

    def __init__(self, application: Any, **kwargs: Any) -> None:
        """SPEC.md's options over daphne's, whose frames stop at 1 MiB (tests/test_13_limits.py::test_frame_size_limit).

        Set here, not by the caller, because ``manage.py runserver`` passes daphne's own."""
        chat = self.chat = django_settings.CHAT
        kwargs.update(
            # Limits
            websocket_max_message_size=chat.max_message_bytes,
            websocket_max_frame_size=chat.max_message_bytes,
            # Timeouts
            ping_interval=math.inf,  # the protocol's own heartbeat replaces daphne's pings (and their timeout)
            websocket_timeout=-1,  # daphne's default closes every WebSocket after 24 hours
            # Once a head is in (HttpChannel's deadline), the client has nothing left to send: the wait is Channels
            # starting the consumer (its channel: Redis's deadline, chat/layers.py), which accepts at once. A server
            # busy with a crowd took more than 5 s, and daphne dropped those connections with a TCP reset
            # (autobahn's openHandshakeTimeout), or would refuse them with 403 after 20 s.
            websocket_handshake_timeout=0,
            websocket_connect_timeout=math.inf,
        )
        self.on_ready: Callable[[], None] | None = kwargs.pop("ready_callable", None)
        super().__init__(application, ready_callable=self.configure, **kwargs)
        self.ports: list[Port] = []

    def configure(self) -> None:
        """Called by daphne's ``run()`` once it has built its factories, before the reactor starts."""
        self.http_factory.protocol = HttpChannel
        self.ws_factory.protocol = ChatWebSocketProtocol
        self.ws_factory.setProtocolOptions(
            failByDrop=False,  # answer a broken frame with a close frame, not a dropped connection
            closeHandshakeTimeout=CLOSE_TIMEOUT,  # a client behind on reading still gets its close frame
        )
        if self.on_ready is not None:
            self.on_ready()

    def create_application(self, protocol: Any, scope: dict[str, Any]) -> Any:
        """The client's address behind a trusted proxy, for the app and the access log: daphne's own option trusts
        every peer and takes X-Forwarded-For's *first* entry, which the client writes (test_16_configuration.py::
        test_client_address_behind_a_proxy). And ``write_now`` as an ASGI extension: daphne's ``send()`` always
        awaits (a speed-up, no test)."""
        if self.chat.trusted_proxies and scope["client"] is not None:
            forwarded = [value.decode("latin-1") for name, value in scope["headers"] if name == b"x-forwarded-for"]
            protocol.client_addr = scope["client"] = list(client_address(self.chat, tuple(scope["client"]), forwarded))
        if isinstance(protocol, ChatWebSocketProtocol):
            scope.setdefault("extensions", {})[WRITE_NOW] = {"write": protocol.write_now}
        return super().create_application(protocol, scope)

    def listen_success(self, port: Port) -> None:
        """Keep the listening ports, for ``shutdown`` to stop accepting first: daphne doesn't keep them (no test)."""
        super().listen_success(port)
        self.ports.append(port)

    async def handle_reply(self, protocol: Any, message: dict[str, Any]) -> None:
        """A send waits while the client isn't reading: daphne's returns (test_13_limits.py::test_slow_consumer)."""
        await super().handle_reply(protocol, message)
        if message["type"] == "websocket.send" and isinstance(protocol, ChatWebSocketProtocol):
            await protocol.write_buffer.has_room.wait()

    def kill_all_applications(self) -> defer.Deferred[None]:
        """1001 to everyone first: daphne cancels every application (test_14_shutdown.py::test_shutdown_closes_1001).

        daphne runs this before the reactor stops."""
        return defer.Deferred.fromFuture(asyncio.ensure_future(self.shutdown()))

    async def shutdown(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SHUTDOWN_TIMEOUT
        for port in self.ports:
            port.stopListening()  # type: ignore[no-untyped-call]  # stop accepting first
        await get_hub().shutdown()  # 1001 to every chat connection
        # Twisted drops whatever is still buffered when the reactor stops: wait for the clients' replies.
        sockets = [p.closed for p in self.connections if isinstance(p, ChatWebSocketProtocol) and not p.closed.done()]
        if sockets:
            await asyncio.wait(sockets, timeout=max(0.0, deadline - loop.time()))
        # What daphne's kill_all_applications does, but it fails on a connection without an application yet.
        instances = [d["application_instance"] for d in self.connections.values() if "application_instance" in d]
        for instance in instances:
            instance.cancel()
        if instances:
            await asyncio.wait(instances)
        logger.info("Stopped %d application instances", len(instances))


class AccessLog(AccessLogGenerator):  # type: ignore[misc]
    """daphne's access log, written to the ``daphne.access`` logger (so tokens get redacted) instead of stdout."""

    def __init__(self) -> None:
        """No stream: ``write_entry`` writes to the logger instead (daphne's needs one: stdout, in daphne's CLI)."""
        super().__init__(stream=None)

    def write_entry(self, host: str, date: Any, request: str, status: int | None = None, **_: Any) -> None:
        """To the logger: daphne writes URLs and tokens to stdout (test_03_tokens.py::test_tokens_never_logged)."""
        logging.getLogger("daphne.access").info('%s "%s" %s', host, request, status or "-")
