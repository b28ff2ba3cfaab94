"""Session's outbound path (chatcore/session.py): a frame skips the queue, through the chapter's ``write_now``, only
when nothing is queued before it and the socket takes it at once; every other frame goes through the queue and
the writer, in order, each chat.message once (SPEC.md §7, §13.4)."""

from __future__ import annotations

import asyncio

from chatcore.handshake import Handshake
from chatcore.protocol import GOING_AWAY, Close
from chatcore.session import Hub
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
