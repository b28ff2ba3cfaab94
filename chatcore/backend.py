"""Room state behind one small interface: seq, history, idempotency and presence (SPEC.md §7-§10).

``create_backend`` picks the implementation, and the fan-out that goes with it, from CHAT_REDIS_URL, the way
encode/broadcaster picks one from a URL. In memory is the default; the Redis one has the same methods.
"""

from __future__ import annotations

import secrets
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit

from chatcore.fanout import Fanout, LocalFanout
from chatcore.protocol import message_frame
from chatcore.settings import REDIS_SCHEMES, Settings


@dataclass(frozen=True, slots=True)
class Message:
    """A committed message: its seq and its ``chat.message`` frame, encoded once for every recipient."""

    seq: int
    frame: str


@dataclass(frozen=True, slots=True)
class Published:
    seq: int
    message: Message | None  # None: the id was a retry, acknowledge it again but broadcast nothing


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What a connecting client is told: the room's epoch and latest seq, and the messages to replay."""

    epoch: str
    seq: int
    resumed: bool
    messages: list[Message]


@dataclass(frozen=True, slots=True)
class PresenceChange:
    members: list[str]  # sorted
    changed: bool  # a user's first connection opened, or its last one closed


@dataclass(frozen=True, slots=True)
class Departure:
    """A user whose last connection to a room was in a process that died: its leave is announced (SPEC.md §10)."""

    room: str
    user: str
    members: list[str]


class BackendUnavailable(Exception):
    """The backend can't take the connection now: Redis is down, or this process holds CHAT_MAX_ROOMS rooms, each
    with members. Connections close with 1013, "try again later"."""


class Backend(Protocol):
    shared: bool  # other processes see the same rooms: presence must be renewed (sweep)

    async def publish(self, room: str, user: str, msg_id: str, text: str) -> Published: ...

    async def snapshot(self, room: str, since: int | None, epoch: str | None) -> Snapshot: ...

    async def join(self, room: str, user: str) -> PresenceChange: ...

    async def leave(self, room: str, user: str) -> PresenceChange: ...

    async def sweep(self) -> list[Departure]:
        """Called every third of CHAT_PRESENCE_TTL (or of CHAT_ROOM_TTL, if shorter): renew this process's presence,
        report who left with a process that died, forget the rooms idle for longer than CHAT_ROOM_TTL."""

    async def aclose(self) -> None: ...


@dataclass(slots=True)
class MemoryRoom:
    epoch: str = field(default_factory=lambda: secrets.token_hex(8))
    seq: int = 0
    history: deque[tuple[Message, str, str]] = field(default_factory=deque)  # (message, user, id)
    ids: dict[tuple[str, str], int] = field(default_factory=dict)  # (user, id) -> seq, for retained messages
    connections: Counter[str] = field(default_factory=Counter)  # user -> open connections


class MemoryBackend:
    """One process's rooms. A room with history is kept after its last member leaves (so that it can be resumed),
    for CHAT_ROOM_TTL; one without is dropped at once. At most CHAT_MAX_ROOMS rooms: to make room for a new one,
    the one empty the longest is forgotten, and if every room has members, the connection is refused (1013).
    Every method runs without awaiting anything, so each one is atomic with respect to every other connection
    on the event loop."""

    shared = False

    def __init__(
        self,
        history_size: int,
        *,
        room_ttl: float = 86400.0,
        max_rooms: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.history_size = history_size
        self.room_ttl = room_ttl
        self.max_rooms = max_rooms
        self.clock = clock
        self.rooms: dict[str, MemoryRoom] = {}
        self.empty: OrderedDict[str, float] = OrderedDict()  # rooms without members: when they emptied, oldest first

    def _room(self, name: str) -> MemoryRoom:
        room = self.rooms.get(name)
        if room is None:
            room = self.rooms[name] = MemoryRoom()
        return room

    def _forget_expired(self) -> None:
        """Forget the rooms that have been empty for CHAT_ROOM_TTL."""
        expired = self.clock() - self.room_ttl
        while self.empty and next(iter(self.empty.values())) <= expired:
            del self.rooms[self.empty.popitem(last=False)[0]]

    async def publish(self, room: str, user: str, msg_id: str, text: str) -> Published:
        state = self._room(room)
        seq = state.ids.get((user, msg_id))
        if seq is not None:
            return Published(seq, None)
        state.seq += 1
        frame = message_frame(seq=state.seq, id=msg_id, user=user, text=text, ts=int(time.time() * 1000))
        message = Message(state.seq, frame)
        state.history.append((message, user, msg_id))
        state.ids[(user, msg_id)] = state.seq
        if len(state.history) > self.history_size:
            _, old_user, old_id = state.history.popleft()
            del state.ids[(old_user, old_id)]
        return Published(state.seq, message)

    async def snapshot(self, room: str, since: int | None, epoch: str | None) -> Snapshot:
        state = self._room(room)
        if since is None:
            return Snapshot(state.epoch, state.seq, False, [])
        first = state.history[0][0].seq if state.history else state.seq + 1
        resumed = epoch == state.epoch and first - 1 <= since <= state.seq
        start = since if resumed else 0
        messages = [message for message, _, _ in state.history if message.seq > start]
        return Snapshot(state.epoch, state.seq, resumed, messages)

    async def join(self, room: str, user: str) -> PresenceChange:
        self._forget_expired()
        if room not in self.rooms and len(self.rooms) >= self.max_rooms:
            if not self.empty:
                raise BackendUnavailable(f"{self.max_rooms} rooms, each with members (CHAT_MAX_ROOMS)")
            del self.rooms[self.empty.popitem(last=False)[0]]  # the room empty the longest
        state = self._room(room)
        self.empty.pop(room, None)
        state.connections[user] += 1
        return PresenceChange(sorted(state.connections), state.connections[user] == 1)

    async def leave(self, room: str, user: str) -> PresenceChange:
        state = self._room(room)
        state.connections[user] -= 1
        last = state.connections[user] <= 0
        if last:
            del state.connections[user]
            if not state.connections:
                if state.history:
                    self.empty[room] = self.clock()
                else:
                    del self.rooms[room]  # nothing to keep: a room nobody talked in costs nothing after it empties
        return PresenceChange(sorted(state.connections), last)

    async def sweep(self) -> list[Departure]:
        self._forget_expired()
        return []  # one process: nobody else's presence to expire

    async def aclose(self) -> None:
        pass


def create_backend(settings: Settings, fanout: Fanout | None = None) -> tuple[Backend, Fanout]:
    """The room state and the fan-out that goes with it, picked by CHAT_REDIS_URL's scheme: none (the default), all
    in this process; redis://, rediss:// or unix://, Redis, shared by every process (redis-py is imported only
    then). ``fanout`` replaces the backend's own (chapter 2 fans out through its channel layer)."""
    scheme = urlsplit(settings.redis_url).scheme
    if not settings.redis_url:
        backend = MemoryBackend(settings.history_size, room_ttl=settings.room_ttl, max_rooms=settings.max_rooms)
        return backend, LocalFanout() if fanout is None else fanout
    if scheme in REDIS_SCHEMES:
        from chatcore.backend_redis import RedisBackend
        from chatcore.fanout_redis import RedisFanout
        from chatcore.redis_client import connect

        client = connect(settings.redis_url)
        redis_backend = RedisBackend(
            client, history_size=settings.history_size, presence_ttl=settings.presence_ttl, room_ttl=settings.room_ttl
        )
        return redis_backend, RedisFanout(client) if fanout is None else fanout
    raise ValueError(f"CHAT_REDIS_URL: no backend for {scheme}:// (Settings.from_env lets only {REDIS_SCHEMES} by)")
