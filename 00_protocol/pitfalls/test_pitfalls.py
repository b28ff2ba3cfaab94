"""Every pitfall of README.md, shown failing on the naive code and handled by each chapter, over real sockets."""

from __future__ import annotations

import contextlib
import uuid

import pytest
from conftest import CHAPTERS, Servers
from members import Member, Target, join
from websockets.exceptions import ConnectionClosed

pytestmark = pytest.mark.timeout(60)
BIG = 2000  # characters in a message: the most a chapter takes (SPEC.md §5), to fill buffers fast
FILL = 3000  # at most this many big messages (6 MB) to fill a stalled member's buffers
BATCH = 50  # messages sent before looking at what the watcher got
LATE = 0.5  # seconds: a message this late to a member who reads is stuck behind someone else


def room() -> str:
    return f"r{uuid.uuid4().hex[:12]}"


def big(n: int) -> str:
    return f"{n:04}".ljust(BIG, "x")


async def fill(sender: Member, watcher: Member) -> int | None:
    """Send big messages until ``watcher`` stops getting them in time: the number of the first one it didn't
    get (it is stuck behind a stalled member), or None if it got all of them."""
    for first in range(0, FILL, BATCH):
        for n in range(first, first + BATCH):
            await sender.say(big(n))
        if await watcher.hears(big(first + BATCH - 1), LATE) is None:
            return next(n for n in range(first, first + BATCH) if big(n) not in watcher.heard)
    return None


async def barrier(target: Target) -> None:
    """Return once the server has handled everything sent to it so far: a few round trips in a room of their
    own go through the server's event loop after the frames and closes that were already there."""
    probe = await join(target, room(), "probe")
    for n in range(3):
        await probe.say(f"probe {n}")
        assert await probe.hears(f"probe {n}") is not None, f"{target.label} did not answer the probe"
    await probe.close()


@pytest.mark.pitfall(1)
@pytest.mark.parametrize(
    "label", ["naive FastAPI", "websockets, send loop", "naive websockets", "naive Channels", *CHAPTERS]
)
async def test_broadcast_while_members_leave(servers: Servers, label: str, record: dict[str, str]) -> None:
    """A member leaves while the sender's loop over the room waits for a slow member: who gets the message?"""
    target = servers.target(label)
    here = room()
    alice, bob, slow, carol = [await join(target, here, name) for name in ("alice", "bob", "slow", "carol")]
    slow.stall()
    stuck = await fill(alice, carol)  # a loop over the room waits at slow, past bob, before carol
    await bob.close()
    await barrier(target)  # the server has seen bob leave (and removed him from the room, if it does that)
    slow.resume()
    with contextlib.suppress(ConnectionClosed):
        await alice.say("after")
    missed = stuck is not None and await carol.hears(big(stuck), 2.0) is None
    alice_closed = await alice.close_code() if await alice.hears("after") is None else None
    if label == "naive FastAPI":
        # The list shrank under the loop: it went on at the index after slow's, past the end. Carol was skipped.
        assert (stuck is not None, missed, alice_closed) == (True, True, None)
        record[label] = f"carol never got message {stuck}: bob left mid-loop, the list shifted, the loop skipped her"
    elif label == "websockets, send loop":
        # The set changed under the loop: the next step raised, and alice's handler died with it.
        assert (stuck is not None, missed, alice_closed) == (True, True, 1011)
        assert "RuntimeError: Set changed size during iteration" in target.server.log()
        record[label] = "RuntimeError: Set changed size during iteration; alice closed with 1011, carol missed it"
    else:
        assert (stuck, missed, alice_closed) == (None, False, None), "nothing may go missing here"
        if target.naive:
            how = "broadcast() has no await in its loop" if "websockets" in label else "a channel per consumer"
            record[label] = f"nobody missed anything: {how}"
        else:
            assert await slow.close_code() == 4001
            record[label] = "nobody missed anything; slow closed with 4001 (SPEC.md §13.4)"
    for member in (alice, slow, carol):
        await member.close()
