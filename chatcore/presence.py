"""Presence announcements (SPEC.md §10), batched per room: a crowd arriving at once costs each member one queue
entry per interval, not one per arrival, and each arrival is one small frame, not the whole member list."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

# Timeouts
INTERVAL = 0.1  # s: a quiet room's change is passed on at once; the next ones at most this often, together

Change = tuple[str, str]  # a user, and its presence frame


@dataclass(frozen=True, slots=True)
class Announcement:
    """Presence changes of one room, in the order of each user's latest change: one entry in a send queue."""

    changes: tuple[Change, ...]


class Batcher:
    """Passes a room's presence changes on (``deliver``) at once when the room has been quiet for INTERVAL, else
    with the others of the same INTERVAL, the latest change of each user only. Only the latest matters: a
    presence frame says whether its user is in the room now. (A ``topic`` other than "presence" keeps its own
    latest: another state of the user's that its room hears of, such as "typing".)"""

    def __init__(self, deliver: Callable[[str, Announcement], None]) -> None:
        self.deliver = deliver
        self.held: dict[str, dict[tuple[str, str], Change]] = {}  # room -> (topic, user) -> change: rooms held back

    def add(self, room: str, user: str, frame: str, topic: str = "presence") -> None:
        held = self.held.get(room)
        if held is None:
            self.hold(room)
            self.deliver(room, Announcement(((user, frame),)))
        else:
            held.pop((topic, user), None)  # to the end: changes go out in the order of each one's latest
            held[topic, user] = (user, frame)

    def hold(self, room: str) -> None:
        self.held[room] = {}
        asyncio.get_running_loop().call_later(INTERVAL, self.release, room)

    def release(self, room: str) -> None:
        held = self.held.pop(room)
        if held:
            self.hold(room)
            self.deliver(room, Announcement(tuple(held.values())))
