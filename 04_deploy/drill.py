"""Chapter 4's drill: members chat through the proxy while each process is restarted in turn; what they lost."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import signal
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx2
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.typing import Origin

from deploy import PROXIES, Deployment, deployed
from tests.harness import ServerProcess
from tests.implementations import IMPLEMENTATIONS

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "drill.json"
MODES = {"restart": "SIGTERM, restarted", "kill": "SIGKILL, restarted"}  # what the drill does to each process
# Timeouts
OPEN_TIMEOUT = 5.0  # for a member's handshake through the proxy
STOP_TIMEOUT = 15.0  # for a process to end after SIGTERM (SPEC.md §14: 1001 to everyone, then exit)
ROUTED_TIMEOUT = 15.0  # for the proxy to send new connections to a process that came back
SETTLE_TIMEOUT = 30.0  # after the last message, for every outbox to drain and every member to catch up
# A member's reconnection delays: 0.025 to 0.075 s, then doubling, with jitter (the shared client's are longer: 0.5
# to 1 s at first, so that a thousand pages do not come back in the same millisecond)
FIRST_RETRY, LONGEST_RETRY = 0.05, 1.0
RETRY_LIMITED = 0.5  # after a rate_limited error (SPEC.md §13.3)


@dataclass(frozen=True, slots=True)
class Report:
    """What one drill measured. ``lost``, ``duplicated``, ``reordered`` and ``not_resumed`` must be 0."""

    impl: str
    proxy: str
    mode: str  # restart: SIGTERM, each process in turn; kill: SIGKILL, each process in turn
    workers: int
    members: int
    rate: float  # messages per second, per member
    seconds: float  # from the first message to the last
    sent: int  # distinct messages the members wrote
    acked: int  # of those, acked to their sender (after resends)
    delivered: int  # of those, received by every member
    lost: int  # written but not received by every member
    duplicated: int  # a member receiving a seq twice, or a message committed under two seqs
    reordered: int  # a member receiving a seq lower than one it had
    not_resumed: int  # reconnections whose welcome said resumed: false
    reconnects: int
    errors: int  # error frames (SPEC.md §12): rate_limited, when a member resends too much at once
    longest_gap: float  # seconds: the longest a member went without a message while the others wrote
    longest_ack: float  # seconds: the longest from writing a message to its ack (resends included)

    def clean(self) -> bool:
        return self.lost == self.duplicated == self.reordered == self.not_resumed == 0


class Member:
    """One user in the room: writes ``rate`` messages a second into an outbox, sends them when connected,
    resends the un-acked ones after each reconnection, and resumes with ``since`` and ``epoch`` (SPEC.md §9),
    as the shared JavaScript client does. Records every frame it receives, with its time."""

    def __init__(self, deployment: Deployment, room: str, user: str, token: str, progress: asyncio.Event) -> None:
        self.deployment, self.room, self.user, self.token, self.progress = deployment, room, user, token, progress
        self.ws: ClientConnection | None = None
        self.since: int | None = None
        self.epoch: str | None = None
        self.outbox: dict[str, str] = {}  # id → frame, in the order written
        self.written: dict[str, float] = {}  # id → when
        self.acked: dict[str, float] = {}  # id → seconds from writing to the ack
        self.received: list[tuple[int, str, float]] = []  # (seq, id, when), in the order received
        self.last_ack = 0  # the highest seq acked to it
        self.not_resumed = self.reconnects = self.errors = 0

    def url(self) -> str:
        query: dict[str, str | int] = {"token": self.token}
        if self.since is not None and self.epoch is not None:
            query.update(since=self.since, epoch=self.epoch)
        return self.deployment.url.replace("https://", "wss://") + f"/ws/chat/{self.room}?{urlencode(query)}"

    async def stay_connected(self, welcomed: asyncio.Event) -> None:
        """Connect, and reconnect whenever the connection ends, until cancelled."""
        delay = FIRST_RETRY
        while True:
            try:
                async with connect(
                    self.url(),
                    ssl=self.deployment.ssl_context(),
                    origin=Origin(self.deployment.origin),
                    open_timeout=OPEN_TIMEOUT,
                    ping_interval=None,  # the protocol's heartbeat (SPEC.md §11) is answered below
                    max_size=None,
                ) as ws:
                    async for text in ws:
                        self.receive(ws, json.loads(text))
                        if self.ws is None:  # the welcome: now resend what wasn't acked
                            self.ws, delay = ws, FIRST_RETRY
                            welcomed.set()
                            for frame in list(self.outbox.values()):
                                await ws.send(frame)
            except (ConnectionClosed, InvalidHandshake, OSError, TimeoutError):
                pass
            self.ws = None
            self.reconnects += 1
            await asyncio.sleep(delay * random.uniform(0.5, 1.5))
            delay = min(2 * delay, LONGEST_RETRY)

    def receive(self, ws: ClientConnection, frame: dict[str, Any]) -> None:
        now = time.monotonic()
        match frame["type"]:
            case "welcome":
                if self.since is not None and not frame["payload"]["resumed"]:
                    self.not_resumed += 1
                if self.since is None:  # the first: what came before it is not for this member
                    self.since = frame["payload"]["seq"]
                self.epoch = frame["payload"]["epoch"]
            case "chat.message":
                self.received.append((frame["seq"], frame["payload"]["id"], now))
                self.since = max(self.since or 0, frame["seq"])
            case "ack":
                if self.outbox.pop(frame["id"], None) is not None:
                    self.acked[frame["id"]] = now - self.written[frame["id"]]
                self.last_ack = max(self.last_ack, frame["seq"])
            case "ping":
                self.send_soon(ws, '{"type": "pong"}')
            case "error":  # rate_limited: neither committed nor acked; again once the bucket has refilled a bit
                self.errors += 1
                if (frame_text := self.outbox.get(frame["id"])) is not None:
                    asyncio.get_running_loop().call_later(RETRY_LIMITED, self.send_soon, ws, frame_text)
        self.progress.set()

    def send_soon(self, ws: ClientConnection, text: str) -> None:
        task = asyncio.ensure_future(ws.send(text))
        task.add_done_callback(lambda task: task.cancelled() or task.exception())  # closed: resent on reconnecting

    async def write_steadily(self, rate: float) -> None:
        """Write ``rate`` messages a second, on a steady clock that starts at a random point of the first second."""
        loop = asyncio.get_running_loop()
        start = loop.time() + random.random() / rate
        for n in itertools.count():
            await asyncio.sleep(max(0.0, start + n / rate - loop.time()))
            await self.write(n)

    async def write(self, n: int) -> None:
        """Write message ``n``: into the outbox, and onto the connection if there is one."""
        msg_id = f"{self.user}-{n}"
        frame = json.dumps({"type": "chat.message", "id": msg_id, "payload": {"text": f"{self.user} says {n}"}})
        self.outbox[msg_id], self.written[msg_id] = frame, time.monotonic()
        if self.ws is not None:
            with contextlib.suppress(ConnectionClosed):  # resent after the reconnection
                await self.ws.send(frame)

    async def finish(self, connection: asyncio.Task[None]) -> None:
        """Close the connection and stop reconnecting."""
        connection.cancel()
        if self.ws is not None:
            await self.ws.close()


class Drill:
    """``members`` members chat in one room through the deployment's proxy while ``mode`` is applied to each
    process in turn, ``between`` messages apart; then they stop writing, and the drill waits until they have
    caught up."""

    def __init__(self, deployment: Deployment, *, members: int, rate: float, mode: str, between: int) -> None:
        self.deployment, self.rate, self.mode, self.between = deployment, rate, mode, between
        self.room = f"drill-{uuid.uuid4().hex[:8]}"
        self.progress = asyncio.Event()  # set by every frame a member receives
        self.count = members
        self.members: list[Member] = []

    async def run(self) -> Report:
        async with httpx2.AsyncClient(verify=self.deployment.ssl_context()) as http:
            for n in range(self.count):
                user = f"member{n}"
                response = await http.get(f"{self.deployment.url}/api/token", params={"user": user})
                token = response.raise_for_status().json()["token"]
                self.members.append(Member(self.deployment, self.room, user, token, self.progress))
        welcomed = [asyncio.Event() for _ in self.members]
        connections = [asyncio.create_task(m.stay_connected(w)) for m, w in zip(self.members, welcomed, strict=True)]
        writing: list[asyncio.Task[None]] = []
        try:
            async with asyncio.timeout(OPEN_TIMEOUT * 2):
                await asyncio.gather(*(w.wait() for w in welcomed))
            # Each member writes on a clock of its own: a send that waits (on a connection that is closing) holds
            # up that member alone, as with people chatting.
            writing = [asyncio.create_task(member.write_steadily(self.rate)) for member in self.members]
            start = time.monotonic()
            for worker in [*self.deployment.workers, None]:
                await self.caught_up(self.seq() + self.between)  # before each step, this many more messages
                if worker is not None:
                    await asyncio.to_thread(self.apply, worker)
            end = time.monotonic()
            for task in writing:
                task.cancel()
            with contextlib.suppress(TimeoutError):  # what is missing then is counted as lost
                await self.caught_up(self.seq(), drained=True)
        finally:  # also when something failed: no member goes on in the background
            for task in writing:
                task.cancel()
            for member, connection in zip(self.members, connections, strict=True):
                await member.finish(connection)
            await asyncio.gather(*connections, *writing, return_exceptions=True)
        failures = [task.exception() for task in [*connections, *writing] if not task.cancelled()]
        if any(failures):  # a member that stopped early would make a smaller drill look clean
            raise RuntimeError(f"a member failed: {failures}")
        return self.report(start, end)

    def apply(self, worker: ServerProcess) -> None:
        """SIGTERM (and wait for the exit) or SIGKILL, start it again on its port, wait until the proxy uses it."""
        if self.mode == "restart":
            worker.signal(signal.SIGTERM)
            worker.wait(STOP_TIMEOUT)
        else:
            worker.kill()
        worker.start()
        self.deployment.wait_routed(worker, ROUTED_TIMEOUT)

    def seq(self) -> int:
        """The room's latest seq, as far as the members know (received, or acked to its sender)."""
        return max(max(member.since or 0, member.last_ack) for member in self.members)

    async def caught_up(self, seq: int, *, drained: bool = False) -> None:
        """Wait until every member has received ``seq``, checked at each frame any member receives; if ``drained``,
        also until every message written is acked, and every member has received every acked message."""
        try:
            async with asyncio.timeout(SETTLE_TIMEOUT):
                while not self.heard(seq, drained=drained):
                    self.progress.clear()
                    await self.progress.wait()
        except TimeoutError:
            behind = [m.user for m in self.members if (m.since or 0) < seq or (drained and m.outbox)]
            raise TimeoutError(f"{', '.join(behind)} not caught up with seq {seq} in {SETTLE_TIMEOUT} s") from None

    def heard(self, seq: int, *, drained: bool) -> bool:
        if drained:
            if any(member.outbox for member in self.members):
                return False
            seq = max(seq, self.seq())
        return all((member.since or 0) >= seq for member in self.members)

    def report(self, start: float, end: float) -> Report:
        written = {msg_id for member in self.members for msg_id in member.written}
        heard = [{msg_id for _, msg_id, _ in member.received} for member in self.members]
        delivered = set.intersection(*heard) & written
        seqs_of_id: dict[str, set[int]] = {}
        duplicated = reordered = 0
        gap = 0.0
        for member in self.members:
            seen: set[int] = set()
            latest, previous = 0, start
            for seq, msg_id, when in member.received:
                seqs_of_id.setdefault(msg_id, set()).add(seq)
                if seq in seen:
                    duplicated += 1
                elif seq < latest:
                    reordered += 1
                seen.add(seq)
                latest = max(latest, seq)
                if when <= end:
                    gap, previous = max(gap, when - previous), when
        duplicated += sum(len(seqs) - 1 for seqs in seqs_of_id.values())
        acks = [wait for member in self.members for wait in member.acked.values()]
        return Report(
            impl=self.deployment.impl.name,
            proxy=self.deployment.proxy,
            mode=self.mode,
            workers=len(self.deployment.workers),
            members=len(self.members),
            rate=self.rate,
            seconds=round(end - start, 1),
            sent=len(written),
            acked=len(acks),
            delivered=len(delivered),
            lost=len(written - delivered),
            duplicated=duplicated,
            reordered=reordered,
            not_resumed=sum(member.not_resumed for member in self.members),
            reconnects=sum(member.reconnects for member in self.members),
            errors=sum(member.errors for member in self.members),
            longest_gap=round(gap, 2),
            longest_ack=round(max(acks, default=0.0), 2),
        )


def drill(
    impl: str, run_dir: Path, *, proxy: str, mode: str, workers: int, members: int, rate: float, between: int
) -> Report:
    """One drill on a deployment of its own."""
    with deployed(IMPLEMENTATIONS[impl], workers, run_dir, proxy=proxy) as deployment:
        return asyncio.run(Drill(deployment, members=members, rate=rate, mode=mode, between=between).run())


COLUMNS = {
    "impl": "chapter",
    "proxy": "proxy",
    "mode": "each process",
    "seconds": "s",
    "sent": "sent",
    "acked": "acked",
    "delivered": "delivered to all",
    "lost": "lost",
    "duplicated": "duplicated",
    "reordered": "reordered",
    "not_resumed": "not resumed",
    "reconnects": "reconnects",
    "longest_gap": "longest gap, s",
    "longest_ack": "longest ack, s",
}


def table(reports: list[Report]) -> list[str]:
    """A Markdown table of ``reports``, one row each."""
    lines = ["| " + " | ".join(COLUMNS.values()) + " |", "|" + " --- |" * len(COLUMNS)]
    for report in reports:
        values = asdict(report) | {"mode": MODES[report.mode]}
        lines.append("| " + " | ".join(str(values[name]) for name in COLUMNS) + " |")
    return lines


def load(path: Path = RESULTS) -> tuple[dict[str, Any], list[Report]]:
    """The committed results: how they were measured, and the reports."""
    data = json.loads(path.read_text())
    return data["run"], [Report(**row) for row in data["reports"]]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--impl", default=",".join(IMPLEMENTATIONS), help="comma-separated chapters (default: all)")
    parser.add_argument("--proxy", default=",".join(PROXIES), help="comma-separated proxies (default: both)")
    parser.add_argument("--modes", default=",".join(MODES), help="restart (SIGTERM), kill (SIGKILL), or both")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--members", type=int, default=20)
    parser.add_argument("--rate", type=float, default=2.0, help="messages per second, per member")
    parser.add_argument("--between", type=int, default=200, help="messages the room hears between two restarts")
    parser.add_argument("--save", type=Path, help="write the reports there, as JSON (committed: results/drill.json)")
    options = parser.parse_args()
    sizes = {"workers": options.workers, "members": options.members, "rate": options.rate, "between": options.between}
    reports = []
    for proxy, impl, mode in itertools.product(
        *(value.split(",") for value in (options.proxy, options.impl, options.modes))
    ):
        with tempfile.TemporaryDirectory(prefix="chat-drill-") as tmp:
            report = drill(impl, Path(tmp), proxy=proxy, mode=mode, **sizes)
        reports.append(report)
        print(f"{impl} behind {proxy}, {MODES[mode]}: {'clean' if report.clean() else 'NOT CLEAN'}", flush=True)
    print("\n".join(table(reports)))
    if options.save:
        run = {"date": time.strftime("%Y-%m-%d"), "cores": os.cpu_count(), **sizes}
        options.save.write_text(json.dumps({"run": run, "reports": [asdict(r) for r in reports]}, indent=1) + "\n")
    return 0 if all(report.clean() for report in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
