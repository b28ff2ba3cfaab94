"""The backends of chatcore/backend*.py: the same behaviour in memory and in Redis (a real redis-server, started
on a free port), and what only Redis does: several processes on one room, a process that dies, a Redis that
loses its data."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator

import orjson
import pytest
import redis.asyncio as redis

from chatcore import redis_client
from chatcore.backend import Backend, BackendUnavailable, MemoryBackend, PresenceChange, Published
from chatcore.backend_redis import RedisBackend
from chatcore.protocol import message_frame
from chatcore.redis_client import errors_as_unavailable, hearing, keys
from tests.redis_server import RedisServer

HISTORY = 3


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.kill()


@pytest.fixture
async def client(redis_server: RedisServer) -> AsyncIterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    await client.flushdb()
    yield client
    await client.aclose()


def redis_backend(client: redis.Redis, presence_ttl: float = 30.0, history: int = HISTORY) -> RedisBackend:
    return RedisBackend(client, history_size=history, presence_ttl=presence_ttl)


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "memory":
        return MemoryBackend(HISTORY)
    return redis_backend(request.getfixturevalue("client"))


async def test_seq_history_and_idempotency(backend: Backend) -> None:
    """Seqs count from 1 without gaps; a retried id gets its seq again and no new message (SPEC.md §7, §8)."""
    first = await backend.publish("r", "alice", "m1", "one")
    assert first.seq == 1 and first.message is not None
    assert (await backend.publish("r", "alice", "m1", "again")).message is None
    assert (await backend.publish("r", "alice", "m1", "again")).seq == 1
    assert (await backend.publish("r", "bob", "m1", "bob's")).seq == 2  # another user's id is another message
    for n in range(3, 6):
        assert (await backend.publish("r", "alice", f"m{n}", "x")).seq == n
    snapshot = await backend.snapshot("r", 0, None)
    assert [m.seq for m in snapshot.messages] == [3, 4, 5]  # the last HISTORY
    assert (await backend.publish("r", "alice", "m1", "now new")).seq == 6  # m1 left history: forgotten


async def test_resume(backend: Backend) -> None:
    """Resume with since and epoch, or get the whole history with resumed false (SPEC.md §9)."""
    for n in range(1, 5):
        await backend.publish("r", "alice", f"m{n}", f"text {n}")
    epoch = (await backend.snapshot("r", None, None)).epoch
    resumed = await backend.snapshot("r", 2, epoch)
    assert (resumed.resumed, [m.seq for m in resumed.messages], resumed.seq) == (True, [3, 4], 4)
    for since, epoch_given in [(0, epoch), (2, "other"), (2, None), (5, epoch)]:
        snapshot = await backend.snapshot("r", since, epoch_given)
        assert (snapshot.resumed, [m.seq for m in snapshot.messages]) == (False, [2, 3, 4]), (since, epoch_given)
    assert (await backend.snapshot("r", 4, epoch)).messages == []


async def test_frame_is_the_protocol_frame(backend: Backend) -> None:
    """The committed frame is exactly chatcore.protocol's chat.message frame."""
    published = await backend.publish("r", "alice", "m1", 'quote " and ✓ and \n')
    assert published.message is not None
    payload = orjson.loads(published.message.frame)["payload"]
    expected = message_frame(seq=1, id="m1", user="alice", text='quote " and ✓ and \n', ts=payload["ts"])
    assert published.message.frame == expected


async def test_presence(backend: Backend) -> None:
    """Join and leave report members, and whether this was the user's first or last connection (SPEC.md §10)."""
    assert await backend.join("r", "bob") == _change(["bob"], True)
    assert await backend.join("r", "alice") == _change(["alice", "bob"], True)
    assert await backend.join("r", "alice") == _change(["alice", "bob"], False)  # a second tab
    assert await backend.leave("r", "alice") == _change(["alice", "bob"], False)
    assert await backend.leave("r", "alice") == _change(["bob"], True)
    assert await backend.leave("r", "bob") == _change([], True)


async def test_empty_room_is_forgotten(backend: Backend) -> None:
    """A room without messages gets a new epoch once its last member has left; one with messages keeps it."""
    await backend.join("quiet", "alice")
    epoch = (await backend.snapshot("quiet", None, None)).epoch
    await backend.leave("quiet", "alice")
    assert (await backend.snapshot("quiet", None, None)).epoch != epoch
    await backend.join("busy", "alice")
    await backend.publish("busy", "alice", "m1", "x")
    epoch = (await backend.snapshot("busy", None, None)).epoch
    await backend.leave("busy", "alice")
    assert (await backend.snapshot("busy", None, None)).epoch == epoch


def _change(members: list[str], changed: bool) -> PresenceChange:
    return PresenceChange(members, changed)


# Redis only: several processes (several RedisBackend objects) on one Redis.


async def test_processes_share_seq_and_ids(client: redis.Redis) -> None:
    """Two processes commit into one sequence, and a retry is recognised on the other process (SPEC.md §8)."""
    one, two = redis_backend(client, history=20), redis_backend(client, history=20)
    seqs = await asyncio.gather(*[(one if n % 2 else two).publish("r", "alice", f"m{n}", "x") for n in range(20)])
    assert sorted(p.seq for p in seqs) == list(range(1, 21))
    assert await two.publish("r", "alice", "m19", "retry") == Published(seqs[19].seq, None)  # m19 went via one


async def test_presence_across_processes(client: redis.Redis) -> None:
    """A user connected to two processes is one member; only the last connection's close is a leave."""
    one, two = redis_backend(client), redis_backend(client)
    assert (await one.join("r", "alice")).changed
    assert not (await two.join("r", "alice")).changed
    assert (await two.join("r", "bob")).members == ["alice", "bob"]
    assert not (await one.leave("r", "alice")).changed
    assert await two.leave("r", "alice") == _change(["bob"], True)


async def test_dead_process_members_expire(client: redis.Redis) -> None:
    """The members of a process that stopped renewing its entries disappear after the TTL, and one sweep of a
    live process reports each of them once (SPEC.md §10)."""
    dead, live = redis_backend(client, presence_ttl=0.3), redis_backend(client, presence_ttl=0.3)
    await dead.join("r", "ghost")
    await dead.join("r", "alice")
    await live.join("r", "alice")
    await live.join("r", "bob")
    assert await live.sweep() == []
    await asyncio.sleep(0.4)  # ok-sleep: the TTL runs out and dead's entries expire in Redis; no event exists
    departures = await live.sweep()  # live renews its own entries, and removes dead's
    assert [(d.room, d.user, d.members) for d in departures] == [("r", "ghost", ["alice", "bob"])]
    assert await live.sweep() == []  # reported once
    assert (await live.join("r", "carol")).members == ["alice", "bob", "carol"]


async def test_redis_losing_its_data_changes_the_epoch(client: redis.Redis) -> None:
    """When Redis loses everything (a restart without persistence), the room gets a new epoch, so a client that
    resumes is told it may have missed messages (SPEC.md §9)."""
    backend = redis_backend(client)
    await backend.publish("r", "alice", "m1", "x")
    epoch = (await backend.snapshot("r", None, None)).epoch
    await client.flushdb()
    snapshot = await backend.snapshot("r", 1, epoch)
    assert (snapshot.epoch != epoch, snapshot.resumed, snapshot.seq) == (True, False, 0)


def test_keys_share_a_cluster_slot() -> None:
    """All of a room's keys carry the room in braces: Redis Cluster puts them in one slot."""
    assert all("{lobby}" in key for key in keys("lobby"))


# Rooms don't live for ever (SPEC.md §9).


async def test_empty_room_forgets_its_history_after_the_ttl() -> None:
    """A room with history keeps it for CHAT_ROOM_TTL after its last member left; then it is forgotten."""
    now = 0.0
    backend = MemoryBackend(HISTORY, room_ttl=60, clock=lambda: now)
    await backend.join("r", "alice")
    await backend.publish("r", "alice", "m1", "x")
    epoch = (await backend.snapshot("r", None, None)).epoch
    await backend.leave("r", "alice")
    now = 59.0
    await backend.sweep()
    await backend.join("r", "bob")  # back in time: the same room
    assert (await backend.snapshot("r", 0, epoch)).resumed
    await backend.leave("r", "bob")  # empty again from 59
    now = 118.0
    await backend.sweep()
    assert "r" in backend.rooms
    now = 119.0
    await backend.sweep()
    assert backend.rooms == {}


async def test_max_rooms() -> None:
    """At CHAT_MAX_ROOMS, a new room takes the place of the one empty the longest; when every room has members,
    it is refused (BackendUnavailable: 1013)."""
    backend = MemoryBackend(HISTORY, max_rooms=2)
    for room in ("a", "b"):
        await backend.join(room, "alice")
        await backend.publish(room, "alice", "m1", "x")
        await backend.leave(room, "alice")
    await backend.join("c", "alice")  # a goes
    assert set(backend.rooms) == {"b", "c"}
    await backend.join("d", "alice")  # b goes
    assert set(backend.rooms) == {"c", "d"}
    with pytest.raises(BackendUnavailable, match="CHAT_MAX_ROOMS"):
        await backend.join("e", "alice")
    await backend.join("d", "bob")  # an existing room: no new one


async def test_redis_keys_expire(client: redis.Redis) -> None:
    """In Redis, a room's keys live CHAT_ROOM_TTL after its last message or snapshot (a member's heartbeat)."""
    backend = RedisBackend(client, history_size=HISTORY, presence_ttl=30, room_ttl=60)
    await backend.publish("r", "alice", "m1", "x")
    meta, history, ids, _ = keys("r")
    for key in (meta, history, ids):
        assert 59_000 < await client.pttl(key) <= 60_000, key
    await client.pexpire(meta, 1000)
    await backend.snapshot("r", None, None)
    assert await client.pttl(meta) > 59_000


@pytest.fixture
async def pooled(redis_server: RedisServer) -> AsyncIterator[redis.Redis]:
    """A client on chatcore's pool, whose connections tell ``hearing`` what they read."""
    client = redis_client.connect(redis_server.url)
    yield client
    await client.aclose()


@contextlib.asynccontextmanager
async def answering(client: redis.Redis) -> AsyncIterator[None]:
    """Redis answering this process ten times a second, while in the block."""

    async def answers() -> None:
        while True:
            await client.ping()
            await asyncio.sleep(0.1)  # ok-sleep: the pace of the answers, not a synchronisation

    task = asyncio.create_task(answers())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_call_fails_when_redis_is_silent(pooled: redis.Redis) -> None:
    """A call fails once Redis has said nothing for ``within`` seconds while it waited (SPEC.md §17); not once it has
    waited that long, while Redis answers others: a process busy with a burst reads its answers late."""
    with pytest.raises(BackendUnavailable, match=r"^Redis did not answer within 0.5 s$"):
        async with asyncio.timeout(1), errors_as_unavailable(within=0.5):
            await pooled.blpop(["nothing"], timeout=1.5)  # Redis answers this one after 1.5 s
    async with answering(pooled), asyncio.timeout(2.5), errors_as_unavailable(within=0.5):
        assert await pooled.blpop(["nothing"], timeout=1.5) is None


async def test_a_call_waits_for_redis_patience_at_most(pooled: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    """While Redis answers others, a call waits REDIS_PATIENCE at most (60 s; 1 s here)."""
    monkeypatch.setattr(redis_client, "REDIS_PATIENCE", 1.0)
    with pytest.raises(BackendUnavailable, match=r"^Redis did not answer within 1 s \(it answered others\)$"):
        async with answering(pooled), asyncio.timeout(2), errors_as_unavailable(within=0.5):
            await pooled.blpop(["nothing"], timeout=3)


async def test_only_what_redis_says_counts(pooled: redis.Redis) -> None:
    """Calls that read nothing from Redis (a SUBSCRIBE, a wait that ends at once) don't count as hearing from it: a
    stalled Redis is found out while clients come and go (§17)."""
    pubsub = pooled.pubsub()
    await pubsub.subscribe("a")  # connects (and hears the connection's set-up)
    assert (await pubsub.get_message(timeout=1) or {}).get("type") == "subscribe"
    before = hearing.last
    async with errors_as_unavailable():
        pass
    async with errors_as_unavailable():
        await pubsub.subscribe("b")  # sent; its confirmation not read yet
    assert hearing.last == before
    assert (await pubsub.get_message(timeout=1) or {}).get("type") == "subscribe"
    assert hearing.last > before
    await pubsub.aclose()  # type: ignore[no-untyped-call]
