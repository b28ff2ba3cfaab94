"""SPEC.md §17: several processes on one Redis, and what happens when a process or Redis dies."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import httpx2
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from tests.client import TIMEOUT, Client, Frame, chat_url, open_client
from tests.cluster import SUFFIX, Cluster
from tests.conftest import MakeServer, show_logs_on_failure
from tests.harness import FAST, Server
from tests.implementations import IMPLEMENTATIONS

pytestmark = pytest.mark.cluster(only=True)

UNAVAILABLE = (1013, "try again later")
STALL_LIMIT = 5.0  # the longest a connection waits on a Redis that does not answer (SPEC.md §17)
PATIENCE = 30.0  # the longest a Member tries to get a message acknowledged or received, reconnecting


class Member:
    """A client that does what the shared client does when its connection ends: it reconnects (to ``servers``
    in turn), resumes with ``since`` and ``epoch``, and resends what was not acknowledged, with the same id."""

    def __init__(self, user: str, room: str, servers: list[Server]) -> None:
        self.user, self.room, self.servers = user, room, servers
        self.client: Client | None = None
        self.epoch: str | None = None
        self.seqs: list[int] = []  # every chat.message received, in order, over all its connections
        self.acked: dict[str, int] = {}  # message id -> seq
        self.presence: list[Frame] = []
        self.resumed: list[bool] = []  # welcome.resumed of each reconnection
        self.history: list[str] = []  # how each attempt and connection ended, for a failure's message

    async def connect(self) -> Client:
        for attempt in range(50):
            server = self.servers[attempt % len(self.servers)]
            since = self.seqs[-1] if self.seqs else (0 if self.epoch else None)
            try:
                self.client = await open_client(server, self.room, self.user, since=since, epoch=self.epoch)
            except (OSError, httpx2.HTTPError, ConnectionClosed, TimeoutError) as exc:  # that process is gone, or busy
                self.history.append(f"{server.name}: {exc!r}")
                await asyncio.sleep(0.1)  # ok-sleep: a reconnect's backoff, as any client has
                continue
            if self.epoch is not None:
                self.resumed.append(self.client.welcome["payload"]["resumed"])
                if not self.resumed[-1]:
                    self.seqs.clear()  # told that it may have missed some: it starts over from what is retained
            self.epoch = self.client.welcome["payload"]["epoch"]
            return self.client
        raise AssertionError(f"{self.user} could not reconnect")

    def take(self, frame: Frame) -> None:
        if frame["type"] == "chat.message":
            previous = self.seqs[-1] if self.seqs else 0
            assert frame["seq"] == previous + 1, f"{self.user}: seq {frame['seq']} after {previous}"
            self.seqs.append(frame["seq"])
        elif frame["type"] == "ack":
            self.acked[frame["id"]] = frame["seq"]
        elif frame["type"].startswith("presence."):
            self.presence.append(frame)

    async def send(self, msg_id: str, text: str) -> None:
        """Send until acknowledged, reconnecting and resending (same id) as often as it takes, within PATIENCE."""
        async with self.patience(f"{msg_id} acknowledged"):
            while msg_id not in self.acked:
                client = self.client or await self.connect()
                try:
                    await client.say(text, msg_id)
                    while msg_id not in self.acked:
                        self.take(await client.recv(TIMEOUT))
                except ConnectionClosed as exc:
                    self.ended(exc)

    async def read_until(self, seq: int) -> None:
        async with self.patience(f"seq {seq} received"):
            while not self.seqs or self.seqs[-1] < seq:
                client = self.client or await self.connect()
                try:
                    self.take(await client.recv(TIMEOUT))
                except ConnectionClosed as exc:
                    self.ended(exc)

    def ended(self, exc: ConnectionClosed) -> None:
        self.history.append(f"closed {exc.rcvd.code} {exc.rcvd.reason!r}" if exc.rcvd else "closed without a frame")
        self.client = None

    @contextlib.asynccontextmanager
    async def patience(self, goal: str) -> AsyncIterator[None]:
        """Fail with what happened, rather than at the test's timeout, if ``goal`` takes longer than PATIENCE."""
        try:
            async with asyncio.timeout(PATIENCE) as patience:
                yield
        except TimeoutError:
            if not patience.expired():
                raise  # a frame's own timeout (Client.recv)
            raise AssertionError(f"{self.user}: not {goal} within {PATIENCE} s: {self.history[-8:]}") from None

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()


def own_cluster(
    request: pytest.FixtureRequest, impl: str, env: dict[str, str], tmp_path: Path, **options: bool
) -> Cluster:
    """A cluster of this test's own, on its own Redis (which the test kills or stalls); its logs are shown if
    the test fails, as ``make_server``'s are."""
    cluster = Cluster(IMPLEMENTATIONS[impl.removesuffix(SUFFIX)], env, tmp_path, **options).start()
    show_logs_on_failure(request, cluster)
    return cluster


async def test_a_process_dies(make_server: MakeServer, room: str) -> None:
    """§17: kill -9 one of two processes while 10 clients send numbered messages: they resume on the survivor,
    every acknowledged message reaches every client once, in seq order, and the members of the dead process
    that don't come back leave within CHAT_PRESENCE_TTL."""
    ttl = 2.0
    cluster = make_server({**FAST, "CHAT_PRESENCE_TTL": str(ttl)}, fresh=True)
    assert isinstance(cluster, Cluster)
    doomed, survivor = cluster.members
    members = [Member(f"user{n}", room, [cluster.members[n % 2], survivor]) for n in range(10)]
    for member in members:
        await member.connect()
    ghost = await open_client(doomed, room, "ghost")  # on the process that dies; never comes back
    count = 20

    busy = asyncio.Event()  # set once a quarter of the messages are acknowledged

    async def chat(member: Member) -> None:
        for n in range(count):
            await member.send(f"{member.user}-{n}", f"{member.user} says {n}")
            if sum(len(other.acked) for other in members) >= 50:
                busy.set()

    async def kill_when_busy() -> None:
        await busy.wait()
        assert doomed.process is not None
        os.kill(doomed.process.pid, signal.SIGKILL)

    await asyncio.wait_for(asyncio.gather(kill_when_busy(), *[chat(member) for member in members]), 40)
    last = max(seq for member in members for seq in member.acked.values())
    assert last == 10 * count  # each message committed once, however often it was sent
    await asyncio.wait_for(asyncio.gather(*[member.read_until(last) for member in members]), 20)
    for member in members:
        assert member.seqs == list(range(1, last + 1)), member.user  # each once, in order, over its connections
        assert all(member.resumed), member.user  # every reconnection resumed
    assert any(member.resumed for member in members[::2]), "nobody was on the process that died"
    watcher = members[1]  # on the survivor from the start
    async with asyncio.timeout(ttl + 2 * TIMEOUT):
        while not any(f["type"] == "presence.leave" and f["payload"]["user"] == "ghost" for f in watcher.presence):
            assert watcher.client is not None
            watcher.take(await watcher.client.recv(ttl + TIMEOUT))
    for member in members:
        await member.close()
    ghost.ws.transport.abort()  # its process is gone


@pytest.mark.parametrize("persistent", [True, False], ids=["redis with persistence", "redis without"])
async def test_redis_dies(
    impl: str, tmp_path: Path, room: str, persistent: bool, request: pytest.FixtureRequest
) -> None:
    """§17: Redis killed mid-chat: the servers stay up and close the connections that need it with 1013, and those
    opened meanwhile right after the handshake; once Redis is back, clients reconnect and chat again. With
    persistence nothing acknowledged is lost and they resume; without, the room has a new epoch and they are told
    (resumed: false)."""
    ttl = 1.0
    env = {**FAST, "CHAT_HEARTBEAT_INTERVAL": "1", "CHAT_PRESENCE_TTL": str(ttl)}
    cluster = own_cluster(request, impl, env, tmp_path, persistent=persistent)
    try:
        alice = Member("alice", room, [cluster.members[0]])
        bob = Member("bob", room, [cluster.members[1]])
        dave = Member("dave", room, [cluster.members[1]])  # closed during the outage, never comes back
        for member in (alice, bob, dave):
            await member.connect()
        epoch = alice.epoch
        for n in range(5):
            await alice.send(f"a{n}", f"before {n}")
        await bob.read_until(5)
        cluster.redis.kill()
        assert alice.client is not None and bob.client is not None
        await alice.client.say("during", "a5")
        code, reason, _ = await alice.client.closed()
        assert (code, reason) == UNAVAILABLE
        for member in (bob, dave):
            assert member.client is not None
            code, reason, _ = await member.client.closed()  # its next heartbeat needs Redis
            assert (code, reason) == UNAVAILABLE
        alice.client = bob.client = dave.client = None
        for server in cluster.members:  # a connection opened meanwhile: no welcome, 1013 (chapters 1 and 3 wait
            await closed_without_welcome(server, room, "erin", STALL_LIMIT + TIMEOUT)  # for pub/sub, 5 s at most)
        cluster.redis.start()
        for server in cluster.members:
            assert server.healthy()
        await alice.send("a5", "during")  # reconnects, resends
        await bob.send("b0", "after")
        await asyncio.sleep(ttl)  # ok-sleep: dave's presence entry, if Redis kept it, expires; no event exists
        carol = Member("carol", room, [cluster.members[0]])
        assert (await carol.connect()).welcome["payload"]["members"] == ["alice", "bob", "carol"]  # not dave
        await carol.close()
        if persistent:
            assert alice.epoch == epoch
            assert alice.acked == {f"a{n}": n + 1 for n in range(6)}
            await bob.read_until(7)
            assert bob.seqs == list(range(1, 8))
        else:
            assert alice.epoch != epoch
            assert (alice.acked["a5"], bob.acked["b0"]) == (1, 2)  # the room started again
        assert "Traceback" not in "".join(process.log() for process in cluster.members)
        await alice.close()
        await bob.close()
    finally:
        cluster.stop()


async def closed_without_welcome(server: Server, room: str, user: str, timeout: float) -> None:
    """Open a connection while Redis is unavailable: it is closed with 1013 right after the handshake (§17)."""
    async with connect(chat_url(server, room, token=server.token(user)), open_timeout=timeout) as ws:
        with pytest.raises(ConnectionClosed) as closed:  # no welcome
            await asyncio.wait_for(ws.recv(), timeout)
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == UNAVAILABLE


async def test_many_join_at_once(make_server: MakeServer, room: str) -> None:
    """§17, §7: 24 clients join 4 rooms at the same moment, spread over two processes; each sends 5 messages,
    and every client receives all 30 of its room, each once, in seq order."""
    cluster = make_server(FAST)
    assert isinstance(cluster, Cluster)
    rooms = [f"{room}-{r}" for r in range(4)]
    clients = await asyncio.wait_for(
        asyncio.gather(*[open_client(cluster.members[n % 2], rooms[n % 4], f"user{n}") for n in range(24)]), 20
    )
    try:
        for n in range(5):
            for number, client in enumerate(clients):
                await client.say(f"user{number} says {n}", f"user{number}-{n}")

        async def seqs(client: Client) -> list[int]:
            received: list[int] = []
            while len(received) < 30:
                frame = await client.recv(TIMEOUT)
                if frame["type"] == "chat.message":
                    received.append(frame["seq"])
            return received

        for received in await asyncio.wait_for(asyncio.gather(*[seqs(client) for client in clients]), 30):
            assert received == list(range(1, 31))
    finally:
        for client in clients:
            await client.close()


async def come_and_go(server: Server, room: str) -> None:
    """Clients arriving in ``room`` twice a second, each gone once it hears anything, all gone when cancelled."""
    visits: set[asyncio.Task[None]] = set()

    async def visit(n: int) -> None:
        with contextlib.suppress(OSError, TimeoutError, InvalidHandshake, ConnectionClosed):
            async with connect(chat_url(server, room, token=server.token(f"visitor{n}")), open_timeout=TIMEOUT) as ws:
                await ws.recv()

    try:
        for n in itertools.count():
            visits.add(asyncio.create_task(visit(n)))
            await asyncio.sleep(0.5)  # ok-sleep: the pace of arrivals, not a synchronisation
    finally:
        for task in visits:
            task.cancel()
        await asyncio.gather(*visits, return_exceptions=True)


async def test_redis_stalls(impl: str, tmp_path: Path, room: str, request: pytest.FixtureRequest) -> None:
    """§17: Redis stops answering (a stalled process, a network partition): a connection that needs it is closed
    with 1013 after at most 5 s, even while others come and go (what they send Redis is no answer from it), and so
    is one opened meanwhile, without a welcome; once Redis answers again, clients resume, nothing acknowledged is
    lost, and a resent message is committed once."""
    cluster = own_cluster(request, impl, FAST, tmp_path)
    try:
        alice = Member("alice", room, [cluster.members[0]])
        bob = Member("bob", room, [cluster.members[1]])
        for member in (alice, bob):
            await member.connect()
        await alice.send("a0", "before")
        await bob.read_until(1)
        assert cluster.redis.process is not None and alice.client is not None
        cluster.redis.process.send_signal(signal.SIGSTOP)
        visitors = asyncio.create_task(come_and_go(cluster.members[0], room))
        try:
            started = asyncio.get_running_loop().time()
            await alice.client.say("during", "a1")
            code, reason, frames = await alice.client.closed(timeout=STALL_LIMIT + TIMEOUT)
            assert (code, reason) == UNAVAILABLE
            assert asyncio.get_running_loop().time() - started < STALL_LIMIT + 1
            assert not any(f["type"] == "ack" for f in frames)
            started = asyncio.get_running_loop().time()
            await closed_without_welcome(cluster.members[1], room, "carol", STALL_LIMIT + TIMEOUT)
            assert asyncio.get_running_loop().time() - started < STALL_LIMIT + 1
        finally:
            cluster.redis.process.send_signal(signal.SIGCONT)
            visitors.cancel()
            await asyncio.gather(visitors, return_exceptions=True)
        alice.client = None
        await alice.send("a1", "during")  # reconnects, resumes, resends
        await alice.send("a2", "after")
        await bob.read_until(3)
        assert alice.acked == {"a0": 1, "a1": 2, "a2": 3}
        assert bob.seqs == [1, 2, 3]
        assert "Traceback" not in "".join(process.log() for process in cluster.members)
        await alice.close()
        await bob.close()
    finally:
        cluster.stop()
