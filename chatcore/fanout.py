"""How a frame reaches every connection in a room: within one process, or through a broker.

The hub commits a message in the backend, then hands its frame to the fan-out; it announces presence changes the
same way. ``LocalFanout`` puts a frame straight into each connection's queue; chapter 2's ``GroupFanout`` sends it
through a Channels group instead. A fan-out may lose frames on the way (a channel layer over capacity, Redis
pub/sub): ``Session`` refills chat messages that went missing from history, so members still get every message
once, in order (SPEC.md §7, §9).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from chatcore.presence import Announcement, Batcher

if TYPE_CHECKING:
    from chatcore.session import Session


class Fanout(Protocol):
    async def subscribe(self, session: Session) -> None:
        """Deliver the frames of ``session.room`` to this session from now on. Idempotent: the hub calls it
        again every heartbeat interval, so a fan-out that expires memberships gets them renewed."""

    async def unsubscribe(self, session: Session) -> None: ...

    async def publish(self, room: str, frame: str, *, seq: int) -> None:
        """Deliver the chat message ``frame``, committed as ``seq``, to every subscriber of the room."""

    async def announce(self, room: str, user: str, frame: str, topic: str = "presence") -> None:
        """Deliver a presence ``frame`` about ``user`` to the room's subscribers but ``user``'s own connections
        (``presence.Batcher`` batches them: ``topic`` says what the frame is the latest state of)."""

    async def aclose(self) -> None: ...


class LocalFanout:
    """Every connection of a room is in this process: a frame goes directly into each one's queue, at once and
    in commit order, so nothing can go missing on the way."""

    def __init__(self) -> None:
        self.rooms: dict[str, set[Session]] = {}
        self.presence = Batcher(self.deliver)

    async def subscribe(self, session: Session) -> None:
        self.rooms.setdefault(session.room, set()).add(session)

    async def unsubscribe(self, session: Session) -> None:
        room = self.rooms.get(session.room)
        if room is not None:
            room.discard(session)
            if not room:
                del self.rooms[session.room]

    async def publish(self, room: str, frame: str, *, seq: int) -> None:
        for session in self.rooms.get(room, ()):
            session.send(frame, seq)

    async def announce(self, room: str, user: str, frame: str, topic: str = "presence") -> None:
        self.presence.add(room, user, frame, topic)

    def deliver(self, room: str, announcement: Announcement) -> None:
        for session in self.rooms.get(room, ()):
            session.announce(announcement)

    async def aclose(self) -> None:
        pass
