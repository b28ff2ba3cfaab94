"""Session's outbound path (chatcore/session.py): a frame skips the queue, through the chapter's ``write_now``, only
when nothing is queued before it and the socket takes it at once; every other frame goes through the queue and
the writer, in order, each chat.message once (SPEC.md §7, §13.4)."""

from __future__ import annotations

import asyncio

from chatcore.backend import Snapshot
from chatcore.handshake import Handshake
from chatcore.hub import Hub
from chatcore.protocol import GOING_AWAY, ChatMessage, Close
from chatcore.settings import Settings


async def test_a_frame_skips_the_queue_only_behind_nothing() -> None:
    """§7, §13.4: written at once while the writer waits with nothing queued; queued (and sent in order by the
    writer) while the socket doesn't take it, and behind whatever is queued; a chat.message already sent is not
    written again."""
    hub = Hub(Settings())
    session = await hub.connect(Handshake(user="alice", room="lobby", since=None, epoch=None))
    written: list[str] = []  # by write_now
    sent: list[str] = []  # by the writer
    closes: list[Close] = []
    takes = True  # whether the socket takes a frame at once (its write buffer below the high-water mark)

    def write_now(frame: str) -> bool:
        if takes:
            written.append(frame)
        return takes

    async def reader() -> None:  # a chapter's reader returns when the client goes away
        await session.ended

    wrote = asyncio.Event()
    took = asyncio.Event()
    gate = asyncio.Event()  # the writer holds each frame it took until the gate is open (a socket that waits)
    gate.set()

    async def writer() -> None:
        while True:
            frame = await session.next_frame()
            took.set()
            await gate.wait()
            sent.append(frame)
            wrote.set()

    async def until_sent(count: int) -> None:
        """Until the writer has sent ``count`` frames in all (and waits again: it does so before we run)."""
        async with asyncio.timeout(1):
            while len(sent) < count:
                wrote.clear()
                await wrote.wait()

    async def send_close(close: Close) -> None:
        closes.append(close)

    running = asyncio.create_task(session.run(reader(), writer(), send_close, write_now))
    try:
        await until_sent(1)
        assert session.idle
        assert [frame[:20] for frame in sent] == ['{"type":"welcome","p']  # the backlog goes through the writer
        session.send("a")
        assert written == ["a"]
        takes = False  # the client stops reading
        session.send("b")
        takes = True  # and reads again, but "b" waits in the queue: "c" must not overtake it
        session.send("c")
        session.send("m1", seq=1)
        assert written == ["a"]
        await until_sent(4)
        assert sent[1:] == ["b", "c", "m1"]
        assert session.last_seq == 1
        session.send("m2", seq=2)  # the next one: at once
        session.send("m2", seq=2)  # already sent: queued, and dropped by the writer
        session.send("z")
        await until_sent(5)
        assert written == ["a", "m2"]
        assert sent[1:] == ["b", "c", "m1", "z"]
        gate.clear()
        took.clear()
        takes = False
        session.send("x")  # queued: the writer takes it, and holds it (its socket waits)
        takes = True
        async with asyncio.timeout(1):
            await took.wait()
        session.send("y")  # nothing is queued, but "x" is in the writer's hands: "y" must not overtake it
        gate.set()
        await until_sent(7)
        session.send("m4", seq=4)  # past a gap: it waits for m3, out of the queue
        session.send("m3", seq=3)  # the next one, but the writer is waiting for it: through the queue
        await until_sent(9)
        assert written == ["a", "m2"]
        assert sent[1:] == ["b", "c", "m1", "z", "x", "y", "m3", "m4"]
        session.close(GOING_AWAY)
        assert await running == GOING_AWAY
        assert closes == [GOING_AWAY]
        session.send("late")  # after the end: neither
        assert written == ["a", "m2"]
    finally:
        running.cancel()
        await hub.shutdown()


async def test_messages_sent_during_a_heartbeat_snapshot_are_no_reset() -> None:
    """§17, §9: the heartbeat's snapshot of the room is on its way (to Redis, in a cluster) while later messages
    reach the client: the room's seq it brings back is below the client's last one, and that is no lost history.
    (Compared with the seq sent by then, healthy clients of busy rooms were closed with 1013.)"""
    hub = Hub(Settings())
    alice = await hub.connect(Handshake(user="alice", room="lobby", since=None, epoch=None))
    bob = await hub.connect(Handshake(user="bob", room="lobby", since=None, epoch=None))
    wrote = asyncio.Event()

    def write_now(frame: str) -> bool:
        wrote.set()
        return True

    async def writer() -> None:
        while True:
            await alice.next_frame()
            wrote.set()

    async def until_sent(seq: int) -> None:
        """Until alice's last chat.message is ``seq`` (and her writer waits again: it does so before we run)."""
        async with asyncio.timeout(1):
            while alice.last_seq < seq:
                wrote.clear()
                await wrote.wait()

    async def reader() -> None:
        await alice.ended

    async def send_close(close: Close) -> None:
        pass

    running = asyncio.create_task(alice.run(reader(), writer(), send_close, write_now))
    snapshot = hub.backend.snapshot

    async def overtaken(room: str, since: int | None, epoch: str | None) -> Snapshot:
        taken = await snapshot(room, since, epoch)
        await hub.publish(bob, ChatMessage(id="b2", text="while the snapshot comes back"))  # seq 2, sent at once
        return taken

    try:
        await hub.publish(bob, ChatMessage(id="b1", text="before"))
        await until_sent(1)
        hub.backend.snapshot = overtaken  # type: ignore[method-assign]
        await alice.catch_up()
        assert alice.last_seq == 2
        assert not alice.ended.done(), alice.ended.result()
    finally:
        running.cancel()
        await hub.shutdown()
