"""Locust users for the benchmarks: a chat member (SPEC.md), a bare-room member and an echo client (§18)."""

from __future__ import annotations

import itertools
import json
import os
import random
import secrets
import time
import urllib.parse
import urllib.request
from collections import Counter
from typing import Any

import gevent
from locust import User, constant_pacing, task
from locust.exception import StopUser
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from histogram import Histogram

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
LATENCY = {"connect": Histogram(), "ack": Histogram(), "delivery": Histogram()}
COUNTS: Counter[str] = Counter()
NUMBERS = itertools.count(1)
# Names and message ids unique to this Locust process: a server kept from an earlier run still has that run's
# ids in its history, and would take a repeated id for a retry (SPEC.md §8): acked, but not broadcast again.
RUN = os.environ.get("BENCH_RUN") or secrets.token_hex(4)


class Member(User):
    """One connection to one room, sending ``RATE`` messages per second. Every message's text carries its send
    time and a per-sender counter, so each receiver measures latency and counts what is missing, repeated or
    out of order, instead of assuming it."""

    abstract = True
    wait_time = constant_pacing(1 / RATE)
    websocket: ClientConnection
    leaving = False

    def on_start(self) -> None:
        self.number = next(NUMBERS)
        self.room = f"bench-{self.number % ROOMS}"
        self.counter = itertools.count(1)
        self.last_seen: dict[str, int] = {}
        self.sent_at: dict[str, int] = {}
        start = time.perf_counter_ns()
        try:
            self.websocket = connect(self.url(), compression=None, max_size=None, open_timeout=10, close_timeout=2)
        except Exception as exc:
            COUNTS["error connect"] += 1  # Locust stops this user: the run goes on one member short
            self.record("connect", start, exception=exc)
            raise
        self.record("connect", start)
        self.reader = gevent.spawn(self.read)
        gevent.sleep(random.random() / RATE)  # users that started together don't send together

    def on_stop(self) -> None:
        self.leaving = True
        self.websocket.close()
        self.reader.join(timeout=5)

    @task
    def send(self) -> None:
        n = next(self.counter)
        now = time.time_ns()
        text = f"{now} {self.number} {n} ".ljust(TEXT_BYTES, "x")
        try:
            self.websocket.send(self.frame(n, text))
        except ConnectionClosed:
            COUNTS["send_after_close"] += 1
            raise StopUser() from None
        if now >= WINDOW["from"]:
            COUNTS["sent"] += 1

    def read(self) -> None:
        try:
            for message in self.websocket:
                self.received(str(message))
        except ConnectionClosed:
            pass
        self.closed()

    def delivered(self, text: str) -> None:
        """A message reached this user: its latency, and whether the sender's counter moved on by exactly one."""
        sent_ns, sender, n = text.split(" ", 3)[:3]
        number = int(n)
        if int(sent_ns) < WINDOW["from"]:  # sent while users were still connecting: only follow its counter
            self.last_seen[sender] = max(self.last_seen.get(sender, 0), number)
            return
        latency = time.time_ns() - int(sent_ns)
        LATENCY["delivery"].record(latency)
        self.environment.events.request.fire(
            request_type="WS", name="delivery", response_time=latency / 1e6, response_length=len(text), exception=None
        )
        last = self.last_seen.get(sender, number - 1)  # a sender's first message here: whatever it sent before
        if number > last:
            COUNTS["delivered"] += 1
            COUNTS["missing"] += number - last - 1
        else:
            COUNTS["repeated_or_reordered"] += 1
        self.last_seen[sender] = max(last, number)

    def record(self, name: str, start_ns: int, exception: Exception | None = None) -> None:
        elapsed = time.perf_counter_ns() - start_ns
        LATENCY[name].record(elapsed)
        self.environment.events.request.fire(
            request_type="WS", name=name, response_time=elapsed / 1e6, response_length=0, exception=exception
        )

    def closed(self) -> None:
        """The connection ended: unless this user was leaving, count how (by close code)."""
        if not self.leaving:
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


class ChatMember(Member):
    """A member of a chat room, speaking SPEC.md: token, welcome, chat.message → ack and fan-out, pings."""

    def url(self) -> str:
        query = urllib.parse.urlencode({"user": f"u{RUN}-{self.number}"})
        with urllib.request.urlopen(f"{self.target()}/api/token?{query}", timeout=10) as response:
            token = json.load(response)["token"]
        return f"{ws(self.target())}/ws/chat/{self.room}?token={token}"

    def frame(self, n: int, text: str) -> str:
        message_id = f"{RUN}-{self.number}-{n}"
        if time.time_ns() >= WINDOW["from"]:  # acks of messages sent in the measured window only
            self.sent_at[message_id] = time.perf_counter_ns()
        return json.dumps({"type": "chat.message", "id": message_id, "payload": {"text": text}})

    def received(self, message: str) -> None:
        frame: dict[str, Any] = json.loads(message)
        kind = frame["type"]
        if kind == "chat.message":
            self.delivered(frame["payload"]["text"])
        elif kind == "ack":
            start = self.sent_at.pop(frame["id"], None)
            if start is not None:
                self.record("ack", start)
        elif kind == "ping":
            self.websocket.send('{"type":"pong"}')
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


def ws(http_url: str) -> str:
    return "ws" + http_url.removeprefix("http")


def results() -> dict[str, Any]:
    """What this process measured, as JSON."""
    seconds = max(0, WINDOW["to"] - WINDOW["from"]) / 1e9
    return {"latency": {name: h.to_json() for name, h in LATENCY.items()}, "counts": dict(COUNTS), "seconds": seconds}
