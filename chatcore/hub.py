"""Every connection of one process: what each chapter's glue calls (SPEC.md §6-§14).

A chapter accepts the WebSocket, then::

    session = await hub.connect(handshake)
    await session.run(read_frames(...), write_frames(...), partial(send_close, websocket))

``Session`` (chatcore/session.py) is one connection; the hub joins it to its room, commits and fans out what its
client sends, and announces its leave. Shutdown closes every connection with 1001.
"""

from __future__ import annotations

import asyncio
import logging

from chatcore.backend import Backend, BackendUnavailable, create_backend
from chatcore.fanout import Fanout
from chatcore.handshake import Handshake
from chatcore.metrics import CONNECTIONS, DISCONNECTS, MESSAGES_RECEIVED
from chatcore.protocol import GOING_AWAY, UNAVAILABLE, ChatMessage, ack_frame, closed_by_peer, presence_frame
from chatcore.session import Session
from chatcore.settings import Settings

logger = logging.getLogger("chat")

# Timeouts
SHUTDOWN_TIMEOUT = 2.0  # how long shutdown waits for every connection to be closed with 1001


class Hub:
    """Every connection of this process: connect, publish and fan out, disconnect, shut down."""

    backend: Backend
    fanout: Fanout

    def __init__(self, settings: Settings, fanout: Fanout | None = None) -> None:
        """``fanout``: the chapter's own, instead of the backend's (chapter 2: its channel layer's groups)."""
        self.settings = settings
        self.backend, self.fanout = create_backend(settings, fanout)
        self.sessions: set[Session] = set()
        self.joined: set[Session] = set()  # the sessions the backend counts among their room's members
        self.shutting_down = False
        self.sweeper: asyncio.Task[None] | None = None

    async def connect(self, handshake: Handshake, address: str = "") -> Session:
        """Join the room: queue the welcome and the replay, tell the others if this user just arrived. If the
        backend is unavailable, the session returned is closed already (1013), without a welcome."""
        session = Session(self, handshake.user, handshake.room, address)
        if self.sweeper is None:
            self.sweeper = asyncio.create_task(self.sweep(), name="sweeper")
        self.sessions.add(session)
        CONNECTIONS.inc()
        try:
            await self.fanout.subscribe(session)  # subscribe first: miss nothing meanwhile
            # Join before the snapshot: a room counted as occupied is not forgotten (new epoch) in between.
            presence = await self.backend.join(handshake.room, handshake.user)
            self.joined.add(session)
            snapshot = await self.backend.snapshot(handshake.room, handshake.since, handshake.epoch)
        except BackendUnavailable as exc:
            logger.warning("Closing %r in %r at once: %s", session.user, session.room, exc)
            session.close(UNAVAILABLE)
            return session
        except BaseException:
            await self.disconnect(session)
            raise
        session.welcome(presence.members, snapshot)
        if self.shutting_down:
            session.close(GOING_AWAY)
        if presence.changed:
            frame = presence_frame("join", user=handshake.user, count=len(presence.members))
            try:
                await self.fanout.announce(handshake.room, handshake.user, frame)
            except BackendUnavailable as exc:
                session.unavailable(exc)
            except BaseException:
                await self.disconnect(session)
                raise
        return session

    async def publish(self, session: Session, message: ChatMessage) -> None:
        """Commit a message, send it to every member of the room (sender included), acknowledge it."""
        MESSAGES_RECEIVED.inc()
        published = await self.backend.publish(session.room, session.user, message.id, message.text)
        if published.message is not None:
            await self.fanout.publish(session.room, published.message.frame, seq=published.seq)
        session.send(ack_frame(id=message.id, seq=published.seq))

    async def disconnect(self, session: Session) -> None:
        """Leave the room; tell the others if that was the user's last connection."""
        session.close(closed_by_peer(None))  # no-op if the reason is already known
        if session not in self.sessions:
            return  # already done
        self.sessions.discard(session)
        try:
            if session in self.joined:  # first: the backend forgets this connection even if Redis is down
                self.joined.discard(session)
                presence = await self.backend.leave(session.room, session.user)
                if presence.changed:
                    frame = presence_frame("leave", user=session.user, count=len(presence.members))
                    await self.fanout.announce(session.room, session.user, frame)
        except BackendUnavailable as exc:
            # The backend's presence entry expires by itself, and a sweep announces the leave (SPEC.md §10).
            logger.warning("Leave of %r in %r not announced: %s", session.user, session.room, exc)
        finally:
            try:
                await self.fanout.unsubscribe(session)
            except BackendUnavailable as exc:
                logger.warning("Unsubscribing %r from %r: %s", session.user, session.room, exc)
            finally:
                CONNECTIONS.dec()
                DISCONNECTS.labels(session.ended.result().label).inc()

    async def sweep(self) -> None:
        """For ever, every third of CHAT_PRESENCE_TTL (or CHAT_ROOM_TTL): renew this process's presence in the
        backend, announce the leaves of users whose process died (SPEC.md §10), forget idle rooms (§9)."""
        while True:
            await asyncio.sleep(min(self.settings.presence_ttl, self.settings.room_ttl) / 3)
            try:
                for gone in await self.backend.sweep():
                    frame = presence_frame("leave", user=gone.user, count=len(gone.members))
                    await self.fanout.announce(gone.room, gone.user, frame)
            except BackendUnavailable as exc:
                logger.warning("Presence not renewed: %s", exc)
            except Exception:  # a bug: log it, and keep renewing, or every member here would expire
                logger.exception("Presence sweep failed")

    async def shutdown(self) -> None:
        """Close every connection with 1001, wait (bounded) until each close frame has gone out, then close
        the fan-out and the backend."""
        self.shutting_down = True
        sessions = list(self.sessions)
        for session in sessions:
            session.close(GOING_AWAY)
        if sessions:
            await asyncio.wait([session.done for session in sessions], timeout=SHUTDOWN_TIMEOUT)
        if self.sweeper is not None:
            self.sweeper.cancel()
        await self.fanout.aclose()
        await self.backend.aclose()
