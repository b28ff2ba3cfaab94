"""The capacity generator: picows clients on uvloop that find how many deliveries per second a server carries."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
import psutil
import uvloop
from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from histogram import Histogram
from rows import PhaseResult, jsonable

# Every message's text: "<sender> <counter> <intended send time, monotonic ns> ", padded to TEXT_BYTES. The
# sender is a member's number in the whole run; counter 0 is the roll call, which is not counted.
TEXT_BYTES = 64
CONNECT_AT_ONCE = 50  # handshakes in flight while connecting
# Roll calls: every member sends one, and again (up to ROLL_CALLS times) if, after ROLL_CALL_WAIT seconds, some
# member has not heard every member of its room: a server may add a member to its room just after the handshake.
ROLL_CALLS, ROLL_CALL_WAIT = 5, 3.0
DRAIN_TIMEOUT = 10.0  # seconds after the last send for every message to reach every member
PACE_EVERY = 0.001  # seconds between an open loop's sending rounds (libuv's timers count whole ms)
# A result is flagged as possibly generator-bound when the generator used more than GENERATOR_BOUND of its core
# while the server used less than SERVER_BUSY of its own: a server busy all the time could not have done more,
# however busy the generator. (Against a server slower than itself, the generator reads each frame as it comes,
# a system call per delivery, and spends more per delivery than against the reference, where frames pile up and
# one read takes many: its share of the core says less about its headroom than the reference's row does.)
GENERATOR_BOUND, SERVER_BUSY = 0.8, 0.9


class Failed(Exception):
    """The run could not go on: what went wrong, for the report."""


@dataclass
class Phase:
    """What one phase of a run measured: a closed loop (saturation) or an open loop at a fixed offered rate."""

    mode: str  # "closed" or "open"
    offered_per_s: float = 0.0  # messages per second, all members together (open loop)
    sent: int = 0  # messages sent in the phase, all counted (but the roll call)
    window_sent: int = 0  # of those, sent inside the measured window
    delivered: int = 0  # deliveries that came after all those before them from the same sender
    expected: int = 0  # every message sent, times the members of its room
    repeated: int = 0  # a sender's counter seen again
    reordered: int = 0  # deliveries that came after a later one from the same sender
    window_deliveries: int = 0  # deliveries that arrived inside the measured window
    latency: Histogram = field(default_factory=Histogram)  # of messages sent inside the window
    window: tuple[int, int] = (0, 0)  # time.time_ns(), for the server's CPU sampled outside this process
    seconds: float = 0.0
    generator_cpu: float = 0.0  # CPU seconds this process used inside the window
    server_cpu: float | None = None  # CPU seconds of --server-pid processes inside the window
    drained_s: float = 0.0  # seconds from the last send until every message had reached every member
    counted: tuple[int, int, int] = (0, 0, 0)  # the run's counts (Run.counts()) when the phase began
    server_cores: int = 1  # that the server's processes run on

    @property
    def missing(self) -> int:
        return self.expected - self.delivered - self.reordered

    def result(self) -> PhaseResult:
        deliveries_per_s = self.window_deliveries / self.seconds if self.seconds else 0.0
        load = self.generator_cpu / self.seconds if self.seconds else 0.0
        cpu = self.server_cpu
        server_load = cpu / self.seconds / self.server_cores if cpu is not None and self.seconds else None
        return PhaseResult(
            mode=self.mode,
            offered_per_s=self.offered_per_s,
            sent=self.sent,
            window_sent=self.window_sent,
            delivered=self.delivered,
            expected=self.expected,
            missing=self.missing,
            repeated=self.repeated,
            reordered=self.reordered,
            complete=self.expected > 0 and self.missing == 0 and self.repeated == 0 and self.reordered == 0,
            window=list(self.window),
            seconds=self.seconds,
            deliveries_per_s=deliveries_per_s,
            generator_cpu=load,  # share of one core
            server_load=server_load,  # share of the server's cores
            generator_bound=load > GENERATOR_BOUND and (server_load is None or server_load < SERVER_BUSY),
            server_cpu_seconds=self.server_cpu,
            server_us_per_delivery=(
                1e6 * self.server_cpu / self.window_deliveries
                if self.server_cpu is not None and self.window_deliveries
                else None
            ),
            generator_us_per_delivery=1e6 * self.generator_cpu / max(self.window_deliveries, 1),
            latency=self.latency.to_json(),
            latency_ms={f"{p:g}": self.latency.percentile(p) if self.latency.count else None for p in (50, 99, 99.9)},
            drained_s=self.drained_s,
        )


class Kind:
    """How one kind of server is spoken to: its URL, and a message in and out of a frame."""

    name = ""

    def __init__(self, path: str) -> None:
        self.path = path  # with {room}

    def url(self, host: str, room: str, user: str) -> str:
        return "ws" + host.removeprefix("http") + self.path.format(room=room)

    def frame(self, text: str, message_id: str) -> bytes:
        return text.encode()

    def text(self, payload: bytes) -> bytes | None:
        """The text of a delivery, or None for a text frame that is not one (see ``other``)."""
        return payload

    def other(self, member: Member, payload: bytes) -> None:
        """A text frame that is not a delivery."""
        member.run.others += 1


class Bare(Kind):
    """A SPEC.md §18 bare room (or the picows reference's): plain text frames, relayed as they are."""

    name = "bare"


class Naive(Kind):
    """A naive server (the frameworks' tutorials): ``{"message": text}`` frames, relayed to the room."""

    name = "naive"

    def frame(self, text: str, message_id: str) -> bytes:
        return orjson.dumps({"message": text})

    def text(self, payload: bytes) -> bytes | None:
        # {"message": "..."} (or {"message":"..."}): the texts are this generator's own, digits, spaces and x's,
        # so the string between the third and fourth quotes is the text, whole. Parsed, it cost the generator as
        # much per delivery as the rest of what it does with one. (Anything else: a tutorial's "Client #3 left
        # the chat", say, counted in ``others``.)
        parts = payload.split(b'"', 4)
        return parts[3] if len(parts) == 5 and parts[1] == b"message" and parts[4] == b"}" else None


class Chat(Kind):
    """The chat protocol (SPEC.md): a token per member, the welcome, chat.message, acks and pings."""

    name = "chat"

    def url(self, host: str, room: str, user: str) -> str:
        query = urllib.parse.urlencode({"user": user})
        with urllib.request.urlopen(f"{host}/api/token?{query}", timeout=10) as answer:
            token = str(json.load(answer)["token"])
        return "ws" + host.removeprefix("http") + self.path.format(room=room) + "?token=" + token

    def frame(self, text: str, message_id: str) -> bytes:
        return orjson.dumps({"type": "chat.message", "id": message_id, "payload": {"text": text}})

    def text(self, payload: bytes) -> bytes | None:
        # Most frames are messages: their text sliced out as it is (see Naive.text); the others parsed.
        if payload.startswith(b'{"type":"chat.message"') and (start := payload.find(b'"text":"')) > 0:
            return payload[start + 8 : payload.index(b'"', start + 8)]
        return None

    def other(self, member: Member, payload: bytes) -> None:
        frame = orjson.loads(payload)
        kind = frame["type"]
        if kind == "ping":
            member.transport.send(WSMsgType.TEXT, b'{"type":"pong"}')
        elif kind == "welcome":
            member.welcomed.set()
        elif kind == "error":
            member.run.fail(f"error {frame['payload']['code']}")
        # and acks, presence


KINDS: dict[str, Callable[[str], Kind]] = {"bare": Bare, "naive": Naive, "chat": Chat}
PATHS = {"bare": "/ws/bench/{room}", "naive": "/ws/{room}", "chat": "/ws/chat/{room}"}


class Member(WSListener):
    """One connection: it sends its messages, and checks every delivery it receives against what each member
    of its room sent: each sender's counter must go up by exactly one."""

    def __init__(self, run: Run, number: int, room: int) -> None:
        self.run = run
        self.number = number  # in the whole run
        self.first = room * run.members  # the number of its room's first member
        self.own = number - self.first  # its index in its room
        self.text = run.kind.text  # the text of a delivery
        self.last = [-1] * run.members  # each room member's last counter received (-1: not even its roll call)
        self.ok = self.repeated = self.reordered = 0  # deliveries new in order (gaps allowed), again, or late
        self.gaps: set[tuple[int, int]] = set()  # (room member, counter) skipped, and not come since
        self.counter = 0  # of its own messages (0: the roll call)
        self.heard = 0  # room members whose roll call it heard
        self.connected = asyncio.Event()
        self.welcomed = asyncio.Event()
        self.closed = asyncio.Event()
        self.leaving = False
        self.transport: WSTransport

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        self.connected.set()

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        payload = frame.get_payload_as_bytes()
        text = self.text(payload)
        if text is None or not self.delivered(text):  # not a delivery: only now look at the frame's type
            kind = frame.msg_type
            if kind == WSMsgType.TEXT:
                self.run.kind.other(self, payload)
            elif kind == WSMsgType.CLOSE:
                if not self.leaving:  # the server closed it
                    self.run.fail(f"closed {frame.get_close_code()}")
                    transport.send_close(frame.get_close_code())
                transport.disconnect()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if not self.leaving:
            self.run.fail("connection lost")
        self.closed.set()

    def delivered(self, text: bytes) -> bool:
        """A message reached this member (False: the frame was not one): in order, repeated, or past a gap; its
        latency; and, in a closed loop, the member's own copy is its cue to send the next one. (The hot path of
        the generator: its counts are the member's own, added up at the ends of a window.)"""
        try:
            sender, counter, sent_ns, _ = text.split(b" ", 3)
            index = int(sender) - self.first
            n = int(counter)
        except ValueError:
            return False
        if not 0 <= index < len(self.last):
            self.run.fail("a delivery from another room")
            return True
        if not n:
            self.called(index)
            return True
        last = self.last[index]
        if n > last:
            self.ok += 1
            if n > last + 1:  # past a gap: those are missing, unless they come late
                self.gaps.update((index, skipped) for skipped in range(last + 1, n))
            self.last[index] = n
        elif (index, n) in self.gaps:
            self.gaps.remove((index, n))
            self.reordered += 1
            return True
        else:
            self.repeated += 1
            return True
        run = self.run
        if run.timed and run.window_from <= (intended := int(sent_ns)) < run.window_to:
            run.phase.latency.record(time.monotonic_ns() - intended)
        if index == self.own and run.closed_loop:
            self.send()
        return True

    def called(self, index: int) -> None:
        """A roll call from the ``index``-th member of the room."""
        if self.last[index] < 0:
            self.last[index] = 0
            self.heard += 1
            if self.heard == self.run.members:
                self.run.ready += 1
                if self.run.ready == len(self.run.all):
                    self.run.everyone.set()

    def send(self, intended: int = 0) -> None:
        """The next message (in an open loop, with the time it was due), unless the phase is over."""
        run = self.run
        if not run.sending:
            return
        self.counter += 1
        now = intended or time.monotonic_ns()
        text = f"{self.number} {self.counter} {now} ".ljust(TEXT_BYTES, "x")
        self.transport.send(WSMsgType.TEXT, run.kind.frame(text, f"{run.id}-{self.number}-{self.counter}"))
        run.phase.sent += 1
        if run.window_from <= now < run.window_to:
            run.phase.window_sent += 1

    def roll_call(self) -> None:
        text = f"{self.number} 0 0 ".ljust(TEXT_BYTES, "x")
        self.run.calls += 1
        self.transport.send(WSMsgType.TEXT, self.run.kind.frame(text, f"{self.run.id}-{self.number}-r{self.run.calls}"))


@dataclass
class Run:
    """R rooms of M members on one server (or on several processes of it, a room's members alternating)."""

    kind: Kind
    hosts: list[str]
    rooms: int
    members: int
    server_pids: list[int]
    server_cores: int = 1
    id: str = field(default_factory=lambda: secrets.token_hex(4))
    phase: Phase = field(default_factory=lambda: Phase("closed"))
    sending: bool = False
    closed_loop: bool = False
    timed: bool = False  # latencies are recorded (in open loops: a closed loop's are its own queue's)
    window_from: int = 2**63  # monotonic ns: messages intended inside [from, to) are measured
    window_to: int = 0
    ready: int = 0  # members that heard every roll call of their room
    calls: int = 0
    others: int = 0  # frames that were not deliveries, from a naive server
    failures: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.all: list[Member] = []
        self.everyone = asyncio.Event()  # every member has heard every member of its room
        self.processes = [psutil.Process(pid) for pid in self.server_pids]

    def fail(self, what: str) -> None:
        self.failures[what] = self.failures.get(what, 0) + 1
        self.everyone.set()  # no use waiting for a roll call

    async def connect(self) -> None:
        """Every member connected (and welcomed, in the chat), then a roll call until each member has heard
        every member of its room: from then on, no message can reach a room before all its members do."""
        users = [(n, n // self.members) for n in range(self.rooms * self.members)]
        with ThreadPoolExecutor(8) as pool:  # the chat's tokens are HTTP requests: out of the event loop
            loop = asyncio.get_running_loop()
            urls = await asyncio.gather(
                *(
                    loop.run_in_executor(
                        pool,
                        self.kind.url,
                        self.hosts[n % len(self.hosts)],  # a room's members alternate between processes
                        f"room{room}",  # letters and digits: the tutorials' routes take \w+
                        f"cap{self.id}-{n}",
                    )
                    for n, room in users
                )
            )
        gate = asyncio.Semaphore(CONNECT_AT_ONCE)

        async def one(n: int, room: int, url: str) -> Member:
            async with gate:
                _, listener = await ws_connect(lambda: Member(self, n, room), url, websocket_handshake_timeout=30)
                assert isinstance(listener, Member)
                member = listener
                if isinstance(self.kind, Chat):
                    await asyncio.wait_for(member.welcomed.wait(), 30)
                return member

        self.all = list(await asyncio.gather(*(one(n, room, url) for (n, room), url in zip(users, urls, strict=True))))
        for _ in range(ROLL_CALLS):
            for member in self.all:
                member.roll_call()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.everyone.wait(), ROLL_CALL_WAIT)
            if self.everyone.is_set() or self.failures:
                break
        if self.failures or self.ready < len(self.all):
            raise Failed(f"roll call: {self.ready} of {len(self.all)} members heard their whole room; {self.failures}")

    async def closed(self, seconds: float, warmup: float) -> Phase:
        """Saturation: every member sends its next message when its own copy of the last one arrives."""
        self.phase = Phase("closed", counted=self.counts(), server_cores=self.server_cores)
        self.closed_loop, self.timed = True, False
        self.sending = True
        for member in self.all:
            member.send()
        await self.measure(seconds, warmup)
        return await self.drain()

    async def open(self, per_second: float, seconds: float, warmup: float) -> Phase:
        """A fixed offered rate (messages per second, all members together, in turn), whatever the server does:
        latency is counted from when each message was due, so a server that falls behind is seen to."""
        self.phase = Phase("open", offered_per_s=per_second, counted=self.counts(), server_cores=self.server_cores)
        self.closed_loop, self.timed = False, True
        self.sending = True
        pacer = asyncio.create_task(self.pace(per_second))
        try:
            await self.measure(seconds, warmup)
        finally:
            self.sending = False
            await pacer
        return await self.drain()

    async def pace(self, per_second: float) -> None:
        start = time.monotonic_ns()
        interval = 1e9 / per_second
        members, due = self.all, 0
        while self.sending:
            now = time.monotonic_ns()
            while (intended := start + int(due * interval)) <= now:
                members[due % len(members)].send(intended)
                due += 1
            await asyncio.sleep(PACE_EVERY)

    async def measure(self, seconds: float, warmup: float) -> None:
        """Warm up, then the measured window: deliveries, this process's CPU and the server's."""
        await asyncio.sleep(warmup)
        phase = self.phase
        deliveries, cpu, server = self.arrived(), time.process_time(), self.server_cpu()
        phase.window = (time.time_ns(), 0)
        self.window_from = start = time.monotonic_ns()
        self.window_to = start + int(seconds * 1e9)
        await asyncio.sleep(seconds)
        phase.seconds = (time.monotonic_ns() - start) / 1e9
        phase.window = (phase.window[0], time.time_ns())
        phase.generator_cpu = time.process_time() - cpu
        phase.window_deliveries = self.arrived() - deliveries
        if server is not None:
            phase.server_cpu = (self.server_cpu() or 0.0) - server
        self.sending = False

    async def drain(self) -> Phase:
        """Until every message sent has reached every member of its room (or the deadline): what was lost."""
        phase = self.phase
        phase.expected = phase.sent * self.members
        ok, repeated, reordered = phase.counted
        start = time.monotonic()
        while self.arrived() - ok - reordered < phase.expected and time.monotonic() - start < DRAIN_TIMEOUT:
            if self.failures:
                break
            await asyncio.sleep(0.01)
        phase.drained_s = time.monotonic() - start
        now = self.counts()
        phase.delivered, phase.repeated, phase.reordered = now[0] - ok, now[1] - repeated, now[2] - reordered
        self.window_from, self.window_to = 2**63, 0
        return phase

    def counts(self) -> tuple[int, int, int]:
        """Deliveries so far, all members together: in order, repeated, past a gap."""
        members = self.all
        return (
            sum(member.ok for member in members),
            sum(member.repeated for member in members),
            sum(member.reordered for member in members),
        )

    def arrived(self) -> int:
        """Deliveries so far that were new (in order, or past a gap)."""
        return sum(member.ok + member.reordered for member in self.all)

    def server_cpu(self) -> float | None:
        if not self.processes:
            return None
        total = 0.0
        for process in self.processes:
            times = process.cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
        return total

    async def close(self) -> None:
        for member in self.all:
            member.leaving = True
            member.transport.send_close(WSCloseCode.OK)
        await asyncio.wait([asyncio.ensure_future(member.closed.wait()) for member in self.all], timeout=10)
        for member in self.all:
            member.transport.disconnect()


async def main(args: argparse.Namespace) -> tuple[dict[str, Any], bool]:
    """A closed loop, then the open loops: the results as JSON (run.py adds the server's name to make a
    CapacityRow of them), and whether the run was whole (no error, no failure, every phase complete)."""
    kind = KINDS[args.kind](args.path or PATHS[args.kind])
    run = Run(kind, args.hosts, args.rooms, args.members, args.server_pid, args.server_cores)
    phases: list[PhaseResult] = []
    error = ""
    try:
        await run.connect()
        closed = (await run.closed(args.seconds, args.warmup)).result()
        phases.append(closed)
        capacity = closed.deliveries_per_s / args.members  # messages per second
        # Open loops only after a closed loop that carried something and lost nothing: else what is still on its
        # way would be counted in the next phase.
        going_on = capacity > 0 and not run.failures and closed.complete
        for share in args.steps if going_on else []:
            step = await run.open(capacity * share, args.seconds, args.warmup)
            phases.append(replace(step.result(), share=share))
            if run.failures:
                break
    except Exception as exc:  # a refused handshake, a timeout, a roll call that never completed: a failed run
        error = f"{type(exc).__name__}: {exc}"
    finally:
        others = run.others
        if run.all:
            await run.close()
    result = {"kind": args.kind, "rooms": args.rooms, "members": args.members, "phases": jsonable(phases)}
    result |= {"failures": run.failures, **({"error": error} if error else {}), "others": others}
    return result, not error and not run.failures and all(phase.complete for phase in phases)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("hosts", help="http://host:port of the server (comma-separated for several processes)")
    parser.add_argument("--kind", choices=KINDS, default="chat")
    parser.add_argument("--path", default="", help="the WebSocket path, with {room} (default: the kind's)")
    parser.add_argument("--rooms", type=int, default=1)
    parser.add_argument("--members", type=int, default=50, help="per room")
    parser.add_argument("--seconds", type=float, default=5.0, help="of each measured window")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds before each window")
    parser.add_argument(
        "--steps",
        type=lambda text: [float(share) for share in text.split(",") if share],
        default=[0.25, 0.5, 0.75, 1.0],
        help="open-loop rates after the closed loop, as shares of its capacity (empty: none)",
    )
    parser.add_argument("--server-pid", type=int, action="append", default=[], help="measure its CPU (repeatable)")
    parser.add_argument("--server-cores", type=int, default=1, help="the cores the server's processes run on")
    parser.add_argument("--out", default="-", help="where to write the results as JSON (default: stdout)")
    args = parser.parse_args(argv)
    args.hosts = args.hosts.split(",")
    return args


if __name__ == "__main__":
    arguments = parse()
    result, whole = uvloop.run(main(arguments))
    output = json.dumps(result, indent=1)
    if arguments.out == "-":
        print(output)
    else:
        with open(arguments.out, "w") as file:
            file.write(output)
    sys.exit(0 if whole else 1)
