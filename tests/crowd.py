"""Many clients at once, for SPEC.md §19: tokens minted here, connections opened together, frames sent together."""

from __future__ import annotations

import asyncio
import json
import resource
import time

import jwt

from tests.client import Client, open_client
from tests.harness import Server

CONNECT_TIMEOUT = 60.0  # for a whole crowd to be welcomed: a loaded server takes seconds, not minutes


def mint(server: Server, user: str) -> str:
    """A token signed with the server's secret, made here: a thousand HTTP requests would only slow the test."""
    assert server.secret is not None, "a crowd needs the server's CHAT_SECRET"
    return jwt.encode({"sub": user, "exp": int(time.time()) + 3600}, server.secret, algorithm="HS256")


def allow_descriptors(count: int) -> None:
    """Raise this process's soft descriptor limit to fit ``count`` sockets (many machines default to 1,024)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = count + 256  # and the test's own files
    if soft < wanted:
        if hard != resource.RLIM_INFINITY and hard < wanted:
            raise RuntimeError(f"this test opens {count} sockets; the hard descriptor limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


async def crowd(server: Server, rooms: list[str], users: list[str], *, at_once: bool = False) -> list[Client]:
    """One client per (room, user), all connected and welcomed; ``at_once``: every handshake started together,
    else at most 100 under way at a time (the way a crowd arrives over a second or two)."""
    allow_descriptors(len(users))
    gate = asyncio.Semaphore(len(users) if at_once else 100)

    async def join(room: str, user: str) -> Client:
        async with gate:
            # A crowd's handshakes queue up in the server: each is bounded by the crowd's deadline, not a frame's.
            return await open_client(server.for_client(), room, user, token=mint(server, user), timeout=CONNECT_TIMEOUT)

    joining = [asyncio.ensure_future(join(room, user)) for room, user in zip(rooms, users, strict=True)]
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT):
            return await asyncio.gather(*joining)
    except BaseException:
        joined = [task for task in joining if task.done() and not task.cancelled() and task.exception() is None]
        await close_all([task.result() for task in joined])  # together: each may wait for its close
        raise


def say_at_once(clients: list[Client], ids: list[str]) -> None:
    """Each client sends one chat message, all in one go: every frame is written before any answer is read."""
    for client, msg_id in zip(clients, ids, strict=True):
        frame = {"type": "chat.message", "id": msg_id, "payload": {"text": f"{msg_id} says hello"}}
        client.write_at_once(json.dumps(frame))


async def close_all(clients: list[Client]) -> None:
    await asyncio.gather(*[client.close() for client in clients], return_exceptions=True)
