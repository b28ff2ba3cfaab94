"""Locust users for the benchmarks: a chat member (SPEC.md), a bare-room member and an echo client (§18)."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import random
import secrets
import socket
import time
import urllib.parse
import urllib.request
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import gevent
import orjson
from gevent.event import Event
from locust import User, constant, task
from locust.exception import StopUser

from gauge import chat_connections
from histogram import Histogram
from locust_websocket import Closed, WebSocket, connect
from rows import LocustResults

# The load, from the environment (benchmarks/run.py sets these; `make bench-ui` takes the defaults).
ROOMS = int(os.environ.get("BENCH_ROOMS", "10"))
RATE = float(os.environ.get("BENCH_RATE", "1"))  # messages per second per user
TEXT_BYTES = int(os.environ.get("BENCH_TEXT_BYTES", "64"))  # padded to about this size
# Several processes of one server (a "+redis" variant): users connect to them in turn. Default: --host.
HOSTS = [host for host in os.environ.get("BENCH_HOSTS", "").split(",") if host]

WARMUP = float(os.environ.get("BENCH_WARMUP", "1"))  # seconds after every user is spawned before measuring

# The measured window, in ns of time.time_ns(): from the locustfile's spawning_complete (+ WARMUP) to the
# test's stop. Only messages sent inside it count, at the sender and at every receiver.
WINDOW = {"from": 2**63, "to": 0}
# What every user of this process measured: written out at the end by the locustfile.
LATENCY: defaultdict[str, Histogram] = defaultdict(Histogram)
COUNTS: Counter[str] = Counter()
NUMBERS = itertools.count(1)
# From the first Churner's first cycle to the last one's end, in ns of time.time_ns().
SPAN = {"from": 2**63, "to": 0}
# Names and message ids unique to this Locust process: a server kept from an earlier run still has that run's
# ids in its history, and would take a repeated id for a retry (SPEC.md §8): acked, but not broadcast again.
RUN = os.environ.get("BENCH_RUN") or secrets.token_hex(4)
# Locust's request events, for its web UI (`make bench-ui`): one per connect, ack, etc., but for deliveries one in
# SAMPLE only, with that delivery's latency, under a name that says so. An event costs Locust about 3 µs, as
# much as the rest of what a user does with a delivery; a sample of one in ten draws the same percentiles, but
# its requests per second are a tenth of the deliveries'. (The benchmarks' own numbers count every delivery.)
SAMPLE = 10
DELIVERY_EVENT = f"delivery (1 in {SAMPLE})"
DELIVERIES = itertools.count()


class Member(User):
    """One connection to one room, sending ``RATE`` messages per second. Every message's text carries its send
    time and a per-sender counter, so each receiver measures latency and counts what is missing, repeated or
    out of order, instead of assuming it."""

    abstract = True
    websocket: WebSocket | None = None
    leaving = False
    next_send = 0.0  # time.monotonic()

    def wait_time(self) -> float:
        """``RATE`` sends per second, each user at its own phase. (Locust's constant_pacing counts from the user's
        creation: users spawned in the same batch all send in the same instant, and their bursts, not the server,
        would set the latency.)"""
        self.next_send += 1 / RATE
        return max(0.0, self.next_send - time.monotonic())

    def on_start(self) -> None:
        self.number = next(NUMBERS)
        self.room = f"bench-{self.number % ROOMS}"
        self.counter = itertools.count(1)
        self.last_seen: dict[str, int] = {}
        self.sent_at: dict[str, int] = {}
        start = time.perf_counter_ns()
        try:
            url = self.url()
            start = time.perf_counter_ns()  # the chat's token request is not part of the connect time
            self.websocket = connect(url)
        except Exception as exc:
            COUNTS["error connect"] += 1  # the run goes on one member short
            self.record("connect", start, exception=exc)
            raise StopUser() from exc
        self.record("connect", start)
        self.reader = gevent.spawn(self.read)
        gevent.sleep(random.random() / RATE)  # a phase of its own
        self.next_send = time.monotonic()

    def on_stop(self) -> None:
        self.leaving = True
        if self.websocket is not None:
            self.websocket.close()
            self.reader.join(timeout=5)

    @task
    def chat(self) -> None:
        self.send()  # not the task itself: Locust gives a subclass its base classes' tasks, whatever it overrides

    def send(self) -> None:
        n = next(self.counter)
        now = time.time_ns()
        text = f"{now} {self.number} {n} ".ljust(TEXT_BYTES, "x")
        assert self.websocket is not None
        try:
            self.websocket.send(self.frame(n, text))
        except Closed:
            COUNTS["send_after_close"] += 1
            raise StopUser() from None
        if now >= WINDOW["from"]:
            COUNTS["sent"] += 1

    def read(self) -> None:
        assert self.websocket is not None
        with contextlib.suppress(Closed):  # a pong sent as the connection closes, too
            for message in self.websocket:  # until the connection is closed
                self.received(message)
        self.closed()

    def delivered(self, text: str) -> None:
        """A message reached this user: its latency, and whether the sender's counter moved on by exactly one."""
        sent_ns, sender, n = text.split(" ", 3)[:3]
        sent, number = int(sent_ns), int(n)
        if sent < WINDOW["from"]:  # sent while users were still connecting: only follow its counter
            self.last_seen[sender] = max(self.last_seen.get(sender, 0), number)
            return
        latency = time.time_ns() - sent
        LATENCY["delivery"].record(latency)
        if next(DELIVERIES) % SAMPLE == 0:
            self.environment.events.request.fire(
                request_type="WS", name=DELIVERY_EVENT, response_time=latency / 1e6, response_length=len(text)
            )
        last = self.last_seen.get(sender, number - 1)  # a sender's first message here: whatever it sent before
        if number > last:
            COUNTS["delivered"] += 1
            COUNTS["missing"] += number - last - 1
            self.last_seen[sender] = number
        else:
            COUNTS["repeated_or_reordered"] += 1

    def record(self, name: str, start_ns: int, exception: Exception | None = None) -> None:
        elapsed = time.perf_counter_ns() - start_ns
        LATENCY[name].record(elapsed)
        self.environment.events.request.fire(
            request_type="WS", name=name, response_time=elapsed / 1e6, response_length=0, exception=exception
        )

    def closed(self) -> None:
        """The connection ended: unless this user was leaving, count how (by close code)."""
        if not self.leaving and self.websocket is not None:
            COUNTS[f"closed {self.websocket.close_code}"] += 1

    def target(self) -> str:
        if HOSTS:
            return HOSTS[(self.number // ROOMS) % len(HOSTS)]  # a room's members alternate between them
        if not self.host:
            raise StopUser("Say which server: --host http://127.0.0.1:8001")
        return str(self.host)

    # Subclasses: where they connect, how a message is framed, what a received frame means.
    def url(self) -> str:
        raise NotImplementedError

    def frame(self, n: int, text: str) -> str:
        return text

    def received(self, message: str) -> None:
        self.delivered(message)


@dataclass
class Watch:
    """When the members of a room heard one user's ``presence.join`` or ``presence.leave`` (time.time_ns())."""

    expected: int  # members that must hear it
    heard: list[int] = field(default_factory=list)
    done: Event = field(default_factory=Event)

    def hear(self) -> None:
        self.heard.append(time.time_ns())
        if len(self.heard) >= self.expected:
            self.done.set()


# (frame type, user) -> Watch: set up by a Leaver or a SlowReader, filled in by the ChatMembers of its room.
WATCHES: dict[tuple[str, str], Watch] = {}


class ChatMember(Member):
    """A member of a chat room, speaking SPEC.md: token, welcome, chat.message → ack and fan-out, pings."""

    def url(self) -> str:
        return chat_url(self.target(), self.room, f"u{RUN}-{self.number}")

    def frame(self, n: int, text: str) -> str:
        message_id = f"{RUN}-{self.number}-{n}"
        if time.time_ns() >= WINDOW["from"]:  # acks of messages sent in the measured window only
            self.sent_at[message_id] = time.perf_counter_ns()
        return json.dumps({"type": "chat.message", "id": message_id, "payload": {"text": text}})

    def received(self, message: str) -> None:
        frame: dict[str, Any] = orjson.loads(message)  # json.loads' dicts, in a quarter of its time
        kind = frame["type"]
        if kind == "chat.message":
            self.delivered(frame["payload"]["text"])
        elif kind == "ack":
            start = self.sent_at.pop(frame["id"], None)
            if start is not None:
                self.record("ack", start)
        elif kind == "ping" and self.websocket is not None:
            self.websocket.send('{"type":"pong"}')
        elif kind in ("presence.join", "presence.leave"):
            watch = WATCHES.get((kind, frame["payload"]["user"]))
            if watch is not None:
                watch.hear()
        elif kind == "error":
            COUNTS[f"error {frame['payload']['code']}"] += 1


class BareMember(Member):
    """A member of a bare room (SPEC.md §18 ``/ws/bench/{room}``): the framework's broadcast, no protocol."""

    def url(self) -> str:
        return f"{ws(self.target())}/ws/bench/{self.room}"


class EchoClient(Member):
    """A client of ``/ws/echo`` (§18): its "delivery" latency is the round trip."""

    def url(self) -> str:
        return f"{ws(self.target())}/ws/echo"


# Scenarios 3-6 (benchmarks/run.py sets these).
MEMBERS = int(os.environ.get("BENCH_MEMBERS", "20"))  # ChatMembers per room
LEAVE = os.environ.get("BENCH_LEAVE", "clean")  # how a Leaver leaves: clean, vanish or silent
CYCLES = int(os.environ.get("BENCH_CYCLES", "5"))  # a Leaver's leaves; the Churners' cycles, all together
LEAVE_DEADLINE = 30.0  # seconds: a leave not heard by then is counted as an error
STALL_DEADLINE = 60.0  # seconds a SlowReader waits, not reading, for the server to close it


class Leaver(User):
    """Scenario 3: one user that joins room bench-0 (whose ChatMembers stay) and leaves the way ``BENCH_LEAVE``
    says, ``BENCH_CYCLES`` times, one leave at a time: ``clean`` (a close frame), ``vanish`` (the TCP connection
    ends without one, as when a process is killed) or ``silent`` (it answers one more ping, then nothing, as when
    a phone loses its network). Measured from the moment it leaves (for ``silent``, its last pong): until each
    member heard the ``presence.leave``, and until ``chat_connections`` is back where it was. Then it ends the
    run."""

    fixed_count = 1  # spawned before the ChatMembers; it waits for them and the warm-up
    wait_time = constant(0)

    def on_start(self) -> None:
        self.hosts = HOSTS or [str(self.host)]
        self.done = False
        self.last_pong = Event()  # set, in silent mode, once the pong after which it goes silent is sent
        self.last_pong_at = 0
        self.going_silent = False
        while time.time_ns() < WINDOW["from"]:
            gevent.sleep(0.1)

    @task
    def leave_again_and_again(self) -> None:
        if self.done:  # the run is ending
            gevent.sleep(1)
            return
        self.done = True
        for cycle in range(CYCLES):
            self.cycle(cycle)
        end_run(self)

    def cycle(self, cycle: int) -> None:
        host = self.hosts[cycle % len(self.hosts)]  # on two processes: every other leave is on the other one
        user = f"l{RUN}-{cycle}"
        before = chat_connections(self.hosts)
        joined = WATCHES[("presence.join", user)] = Watch(MEMBERS)
        left = WATCHES[("presence.leave", user)] = Watch(MEMBERS)
        websocket = connect(chat_url(host, "bench-0", user))
        self.going_silent = False
        self.last_pong.clear()
        reader = gevent.spawn(self.answer_pings, websocket)
        if not joined.done.wait(LEAVE_DEADLINE):
            COUNTS["error join not heard"] += 1
        if LEAVE == "clean":
            left_at = time.time_ns()
            websocket.close()
        elif LEAVE == "vanish":
            left_at = time.time_ns()
            websocket.socket.shutdown(socket.SHUT_RDWR)  # FIN, and no close frame: the kernel of a killed process
        else:
            self.going_silent = True  # answers the next ping, then nothing (and reads on)
            if not self.last_pong.wait(LEAVE_DEADLINE):
                COUNTS["error no ping"] += 1
            left_at = self.last_pong_at
        while chat_connections(self.hosts) > before:
            if time.time_ns() - left_at > LEAVE_DEADLINE * 1e9:
                COUNTS["error chat_connections not back"] += 1
                break
            gevent.sleep(0.002)  # poll interval
        else:
            LATENCY["connections back"].record(time.time_ns() - left_at)
        if left.done.wait(LEAVE_DEADLINE):
            for at in left.heard:
                LATENCY["leave heard"].record(at - left_at)
            LATENCY["leave heard by all"].record(max(left.heard) - left_at)
        else:
            COUNTS["error leave not heard by all"] += 1
        reader.join(timeout=LEAVE_DEADLINE)
        websocket.close()
        COUNTS[f"leaver got {websocket.close_code}"] += 1  # clean: 1000 (its own); vanish: 1006; silent: 4000
        COUNTS["leaves"] += 1
        gevent.sleep(0.5)  # the members' messages flow on between one leave and the next

    def answer_pings(self, websocket: WebSocket) -> None:
        with contextlib.suppress(Closed):  # a pong sent as the connection closes, too
            for message in websocket:  # until the connection is closed
                if json.loads(message)["type"] == "ping" and not self.last_pong.is_set():
                    websocket.send('{"type":"pong"}')
                    if self.going_silent:
                        self.last_pong_at = time.time_ns()
                        self.last_pong.set()


class Churner(User):
    """Scenario 4: connect (token and handshake), send one message, wait for its ack, leave with a close frame,
    and again; ``BENCH_CYCLES`` cycles over every Churner of the run, then it ends the run."""

    wait_time = constant(0)
    started = itertools.count(1)
    finished = itertools.count(1)

    def on_start(self) -> None:
        self.number = next(NUMBERS)
        self.room = f"bench-{self.number % ROOMS}"
        self.hosts = HOSTS or [str(self.host)]

    @task
    def cycle(self) -> None:
        n = next(Churner.started)
        if n > CYCLES:  # the others are finishing theirs
            gevent.sleep(1)
            return
        start = time.perf_counter_ns()
        SPAN["from"] = min(SPAN["from"], time.time_ns())
        try:
            self.chat_once(self.hosts[n % len(self.hosts)], n)
        except Exception as exc:  # counted, and the run goes on: errors are what this scenario looks for
            COUNTS[f"error {type(exc).__name__}"] += 1
        else:
            COUNTS["cycles"] += 1
        LATENCY["cycle"].record(time.perf_counter_ns() - start)
        SPAN["to"] = max(SPAN["to"], time.time_ns())
        if next(Churner.finished) == CYCLES:
            end_run(self)

    def chat_once(self, host: str, n: int) -> None:
        message_id = f"{RUN}-c{n}"
        with connect(chat_url(host, self.room, f"c{RUN}-{self.number}")) as websocket:
            if json.loads(websocket.recv(timeout=10))["type"] != "welcome":
                raise RuntimeError("the first frame was not the welcome")
            websocket.send(json.dumps({"type": "chat.message", "id": message_id, "payload": {"text": "churn"}}))
            while True:
                frame = json.loads(websocket.recv(timeout=10))
                if frame["type"] == "ack" and frame["id"] == message_id:
                    break
                if frame["type"] == "ping":
                    websocket.send('{"type":"pong"}')
        if websocket.close_code != 1000:
            COUNTS[f"closed {websocket.close_code}"] += 1


class SlowReader(User):
    """Scenario 5: one per room, sending nothing, with a 4 KB receive buffer. It reads for a second, then stops
    reading until the server gives up on it (SPEC.md §13.4: the room's members hear its leave), reads on to the
    close (4001, or 1006 when it came back too late), resumes with ``since`` and ``epoch`` (§9) and checks that
    the seqs go on without a gap; and again. Its deliveries are not in the healthy members' numbers."""

    fixed_count = ROOMS
    wait_time = constant(0)
    numbers = itertools.count(0)
    finished = itertools.count(1)
    stalls = 0

    def on_start(self) -> None:
        self.number = next(SlowReader.numbers)
        self.room = f"bench-{self.number % ROOMS}"
        self.user = f"s{RUN}-{self.number}"
        self.hosts = HOSTS or [str(self.host)]
        self.seq = 0
        self.epoch: str | None = None
        while time.time_ns() < WINDOW["from"]:  # the room's members are there, and warmed up
            gevent.sleep(0.1)
        self.websocket = self.join()

    def join(self) -> WebSocket:
        host = self.hosts[self.number % len(self.hosts)]
        query: dict[str, str | int] = {"since": self.seq, "epoch": self.epoch} if self.epoch else {}
        url = chat_url(host, self.room, self.user, **query)
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting: it sets the window
        address = urllib.parse.urlsplit(host)
        sock.connect((address.hostname, address.port))
        websocket = connect(url, sock)  # it reads only when recv() is called: not at all while it stalls
        welcome = json.loads(websocket.recv(timeout=10))["payload"]
        if self.epoch is not None:
            COUNTS["slow resumed" if welcome["resumed"] else "error slow not resumed"] += 1
        self.epoch = welcome["epoch"]
        self.seq = self.seq or welcome["seq"]
        return websocket

    @task
    def stall(self) -> None:
        if self.stalls == CYCLES:  # done: a reader like any other, until the others are done too
            self.read_for(1.0)
            return
        self.stalls += 1
        self.read_for(1.0)
        left = WATCHES[("presence.leave", self.user)] = Watch(1)
        stalled_at = time.time_ns()
        if left.done.wait(STALL_DEADLINE):  # not reading: the server's queue for it fills up, and it is closed
            LATENCY["slow closed after"].record(left.heard[0] - stalled_at)
            code = self.read_for(10.0)  # what was on its way, up to the close
            COUNTS[f"slow closed {code}" if code else "error slow left but not closed"] += 1
            self.websocket.close()
            try:
                self.websocket = self.join()
            except Exception as exc:
                COUNTS[f"error slow rejoin {type(exc).__name__}"] += 1
                self.stalls = CYCLES  # and it reads no more: it counts as done, so that the run ends
        else:
            COUNTS["error slow not closed"] += 1
        if next(SlowReader.finished) == ROOMS * CYCLES:
            end_run(self)

    def read_for(self, seconds: float) -> int | None:
        """Read (and answer pings) for ``seconds``, or until the connection ends: its close code then."""
        if self.websocket.close_code is not None:  # a rejoin failed: nothing to read
            gevent.sleep(seconds)
            return None
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                frame = json.loads(self.websocket.recv(timeout=remaining))
            except TimeoutError:
                return None
            except Closed:
                return self.websocket.close_code
            if frame["type"] == "chat.message":
                seq = frame["seq"]
                if seq > self.seq + 1:
                    COUNTS["error slow seq gap"] += 1
                elif seq <= self.seq:
                    COUNTS["error slow seq repeated"] += 1
                self.seq = max(self.seq, seq)
                COUNTS["slow delivered"] += 1
            elif frame["type"] == "ping":
                self.websocket.send('{"type":"pong"}')
        return None


class IdleMember(ChatMember):
    """Scenario 6: a chat member that connects, answers pings and sends nothing."""

    wait_time = constant(1)

    def send(self) -> None:
        pass


def end_run(user: User) -> None:
    """End the Locust run from one of its users, once the task that calls this has returned (in the web UI, stop
    the test and keep the UI)."""
    runner = user.environment.runner
    assert runner is not None
    headless = getattr(user.environment.parsed_options, "headless", True)
    gevent.spawn(runner.quit if headless else runner.stop)


def ws(http_url: str) -> str:
    return "ws" + http_url.removeprefix("http")


def chat_url(host: str, room: str, user: str, **query: str | int) -> str:
    """The URL of ``room`` on ``host`` (http://…) for ``user``, with a token from ``/api/token`` (SPEC.md §3)."""
    with urllib.request.urlopen(f"{host}/api/token?{urllib.parse.urlencode({'user': user})}", timeout=10) as answer:
        token = json.load(answer)["token"]
    return f"{ws(host)}/ws/chat/{room}?{urllib.parse.urlencode({'token': token, **query})}"


def results() -> LocustResults:
    """What this process measured."""
    return LocustResults(
        latency={name: h.to_json() for name, h in LATENCY.items()},
        counts=dict(COUNTS),
        seconds=max(0, WINDOW["to"] - WINDOW["from"]) / 1e9,
        window=[WINDOW["from"], WINDOW["to"]],
        span_seconds=max(0, SPAN["to"] - SPAN["from"]) / 1e9,
    )
