"""What the benchmarks measured, typed: results.json's rows, and what a capacity or Locust run hands the runner."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Self, TypeVar

Percentiles = dict[str, float]  # ms, by percentile as f"{p:g}": {"50": …, "99": …}
Counts = dict[str, int]  # how many times each thing happened: failures, close codes

# Scenario 1's rows: each a server and the room the capacity generator speaks to on it, in the report's order:
# the reference, then each chapter's naive server, bare room and chat, then the chapters on Redis.
CAPACITY_ROWS = [
    ("reference", "bare"),
    *(
        row
        for name in ("websockets", "fastapi", "channels")
        for row in ((f"naive-{name}", "naive"), (name, "bare"), (name, "chat"))
    ),
    *((f"{name}+redis", "chat") for name in ("websockets", "fastapi", "channels")),
]
# Scenario 2, chapter 2's cost ledger: the Channels stack with one layer swapped at a time, closed loop only.
LEDGER_ROWS = [
    ("naive-channels", "naive"),
    ("naive-channels/no-hop", "naive"),
    ("naive-channels/uvicorn", "naive"),
    ("naive-channels/uvicorn/no-hop", "naive"),
    ("naive-channels/redis", "naive"),
    ("channels/hop", "chat"),
    ("channels/channels-loop", "chat"),
    ("channels/channels-layer", "chat"),
    ("channels", "chat"),
    ("channels/uvicorn", "chat"),
    ("channels/redis", "chat"),
]


@dataclass(frozen=True)
class Record:
    """A JSON object of results.json: each field a key, in the fields' order; an optional field (None by
    default) is left out while it is None."""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        return cls(**data)

    def to_json(self) -> dict[str, Any]:
        return {
            item.name: jsonable(value)
            for item in fields(self)
            if (value := getattr(self, item.name)) is not None or item.default is not None
        }


def jsonable(value: Any) -> Any:
    """``value`` as json.dumps takes it: records as their JSON objects, in lists too."""
    if isinstance(value, Record):
        return value.to_json()
    if isinstance(value, list):
        return [jsonable(item) for item in value]
    return value


R = TypeVar("R", bound=Record)


def loaded(kind: type[R], items: list[Mapping[str, Any]]) -> list[R]:
    """Records of ``kind`` from their JSON objects."""
    return [kind.from_json(item) for item in items]


@dataclass(frozen=True, kw_only=True)
class PhaseResult(Record):
    """One phase of a capacity run (capacity.py): its closed loop, or an open-loop step at a share of it."""

    mode: str  # "closed" or "open"
    offered_per_s: float  # messages per second, all members together (open loop)
    sent: int
    window_sent: int  # of those, sent inside the measured window
    delivered: int
    expected: int  # every message sent, times the members of its room
    missing: int
    repeated: int
    reordered: int
    complete: bool  # nothing missing, repeated or reordered
    window: list[int]  # time.time_ns()
    seconds: float
    deliveries_per_s: float
    generator_cpu: float  # share of one core
    server_load: float | None  # share of the server's cores
    generator_bound: bool
    server_cpu_seconds: float | None
    server_us_per_delivery: float | None
    generator_us_per_delivery: float
    latency: dict[str, int]  # histogram.py's buckets
    latency_ms: dict[str, float | None]  # p50, p99, p99.9 (None: nothing was measured)
    drained_s: float  # from the last send until every message had reached every member
    share: float | None = None  # an open loop's offered rate, as a share of the closed loop's deliveries/s


@dataclass(frozen=True, kw_only=True)
class CapacityRow(Record):
    """Scenario 1 or 2: one run of the capacity generator against a server, its closed loop then its open loops."""

    variant: str
    label: str
    kind: str  # the room: bare, naive or chat
    rooms: int
    members: int  # per room
    phases: list[PhaseResult]  # none when the run failed before its closed loop ended
    failures: Counts
    error: str | None = None  # what ended the run early
    others: int  # frames that were not deliveries
    repeat: int

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        return super().from_json({**data, "phases": loaded(PhaseResult, data["phases"])})


@dataclass(frozen=True, kw_only=True)
class DisconnectRow(Record):
    """Scenario 3: a member leaving one way (clean, vanish, silent), again and again, on one server."""

    variant: str
    way: str
    leaves: int
    complete: bool  # the members who stayed got every message
    heard_ms: Percentiles  # from the leave to each member hearing it
    heard_by_all_ms: Percentiles  # … to the last member hearing it
    connections_back_ms: Percentiles  # … to chat_connections back where it was
    leaver_codes: Counts  # the close codes the leaver saw
    survivors_sent: int
    survivors_delivered: int
    missing: int
    repeated_or_reordered: int
    failures: Counts
    repeat: int


@dataclass(frozen=True, kw_only=True)
class ChurnRow(Record):
    """Scenario 4: connect → chat → disconnect cycles on one server, in two halves."""

    variant: str
    cycles: int
    cycles_per_s: float
    cycle_ms: Percentiles  # the second half's
    failures: Counts
    connections_left: float  # chat_connections after the run, against before it
    connections_back_s: float
    rss_before_mb: float
    rss_half_mb: float
    rss_end_mb: float
    rss_timeline: list[list[float]]  # [seconds, MB]
    repeat: int


@dataclass(frozen=True, kw_only=True)
class SlowRow(Record):
    """Scenario 5: chatting rooms on one server, with one reader per room that stops reading, or without."""

    variant: str
    slow_readers: int
    seconds: float
    sent: int
    delivered: int
    expected: int
    complete: bool
    missing: int
    repeated_or_reordered: int
    delivery_ms: Percentiles  # the healthy members'
    closed_after_s: float  # from a slow reader's stall to its close (median)
    slow_codes: Counts  # the close codes the slow readers saw
    slow_resumed: int
    failures: Counts
    peak_rss_mb: float
    repeat: int


@dataclass(frozen=True, kw_only=True)
class IdleRow(Record):
    """Scenario 6: idle members, ``connections`` of them, on one server."""

    variant: str
    connections: int
    connected: float  # chat_connections reached
    all_connected: bool
    rss_before_mb: float
    rss_mb: float
    kb_per_connection: float
    connect_ms: Percentiles
    failures: Counts
    repeat: int


BUSY = 0.9  # Locust's share of its core from which a step measures its ceiling


@dataclass(frozen=True, kw_only=True)
class CeilingStep(Record):
    """Scenario 7, one Locust run at one load: what it delivered, and what that cost Locust's process. Its JSON
    adds the numbers derived from the measurements."""

    user: str
    users: int
    rate: float  # messages per second per user
    fanout: int  # deliveries per message sent: the room's members (the sender too), or 1 for the echo
    seconds: float  # the measured window
    sent: int  # in the window
    delivered: int  # of the messages sent in the window
    cpu_seconds: float  # Locust's, in the window
    server_cpu_seconds: float  # the server's (all its processes), in the window
    p99_ms: float  # of the deliveries: past Locust's ceiling, it grows with the frames waiting to be read
    failures: Counts = field(default_factory=dict)  # missing, repeated, errors, closed connections

    DERIVED = ("deliveries_per_s", "load", "server_load", "us_per_delivery", "ceiling", "kept_up", "bound")

    @property
    def deliveries_per_s(self) -> float:
        return self.delivered / self.seconds if self.seconds else 0.0

    @property
    def load(self) -> float:
        """Locust's CPU as a share of its one core."""
        return self.cpu_seconds / self.seconds if self.seconds else 0.0

    @property
    def server_load(self) -> float:
        """The server's CPU as a share of one core (the server's core, with one process)."""
        return self.server_cpu_seconds / self.seconds if self.seconds else 0.0

    @property
    def us_per_delivery(self) -> float:
        """Locust's CPU per delivery (its sends and everything else included): the number to compare."""
        return self.cpu_seconds / self.delivered * 1e6 if self.delivered else math.inf

    @property
    def ceiling(self) -> float:
        """Deliveries per second a whole core would check at this cost."""
        return 1e6 / self.us_per_delivery

    @property
    def kept_up(self) -> bool:
        """Locust sent what it was asked to, and (but the half second on its way at the stop) all of it arrived."""
        asked = self.users * self.rate * self.seconds
        expected = self.sent * self.fanout
        return self.sent >= 0.97 * asked and self.delivered >= expected - self.users * self.rate * 0.5 * self.fanout

    @property
    def bound(self) -> str:
        """Who was busy: "Locust", "server", both, or "" (neither: the load was below both ceilings)."""
        return " and ".join(
            name for name, load in (("Locust", self.load), ("server", self.server_load)) if load >= BUSY
        )

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        return super().from_json({name: value for name, value in data.items() if name not in cls.DERIVED})

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), **{name: getattr(self, name) for name in self.DERIVED}}

    def line(self) -> str:
        return (
            f"{self.user:<11} {self.users} users x {self.rate:g}/s: {self.deliveries_per_s:9,.0f} deliveries/s,"
            f" Locust at {self.load:4.0%} (server {self.server_load:4.0%}), {self.us_per_delivery:5.1f} µs per delivery"
            f" (ceiling {self.ceiling:8,.0f}/s), p99 {self.p99_ms:.1f} ms{'' if self.kept_up else ', fell behind'}"
            f"{f', {self.failures}' if self.failures else ''}"
        )


@dataclass(frozen=True, kw_only=True)
class CeilingRow(Record):
    """Scenario 7: one Locust user's steps against a server, up to its ceiling. Its JSON has the last step's
    keys first, as the row's own."""

    variant: str
    steps: list[CeilingStep]
    repeat: int

    @property
    def last(self) -> CeilingStep:
        """The step that found the ceiling (or the last one tried)."""
        return self.steps[-1]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        return cls(variant=data["variant"], steps=loaded(CeilingStep, data["steps"]), repeat=data["repeat"])

    def to_json(self) -> dict[str, Any]:
        return {"variant": self.variant, **self.last.to_json(), "steps": jsonable(self.steps), "repeat": self.repeat}


@dataclass(frozen=True, kw_only=True)
class ScenarioError(Record):
    """A scenario that failed on a server, or a traceback in the server's log while it ran."""

    scenario: str
    variant: str
    error: str


@dataclass(frozen=True, kw_only=True)
class Machine(Record):
    """The machine a run was on: its CPU, the cores each side was pinned to, the versions of what ran."""

    cpu: str
    cores: int | None
    server_cores: list[int]
    generator_cores: list[int]
    python: str
    kernel: str
    versions: dict[str, str]  # of the packages under test and the load generators'


@dataclass(frozen=True, kw_only=True)
class Invocation(Record):
    """One call of run.py whose rows are in the file (several with --merge)."""

    started: str  # ISO 8601, to the second
    scenarios: list[str]  # their numbers


@dataclass(frozen=True, kw_only=True)
class Results(Record):
    """results.json: the settings and the machine, every scenario's rows (each with its repeat), the errors, and
    the calls of run.py merged into it."""

    profile: str
    settings: dict[str, Any]  # run.py's Profile
    chat_settings: dict[str, str]
    scenario_settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    machine: Machine
    gated_out: list[str]
    capacity: list[CapacityRow] = field(default_factory=list)
    ledger: list[CapacityRow] = field(default_factory=list)
    disconnects: list[DisconnectRow] = field(default_factory=list)
    churn: list[ChurnRow] = field(default_factory=list)
    slow_consumers: list[SlowRow] = field(default_factory=list)
    idle: list[IdleRow] = field(default_factory=list)
    locust_ceiling: list[CeilingRow] = field(default_factory=list)
    errors: list[ScenarioError] = field(default_factory=list)
    runs: list[Invocation] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        """A section missing from ``data`` is empty; one of a scenario that is no longer run (in an older file) is
        left out."""
        return cls(
            profile=data["profile"],
            settings=data["settings"],
            chat_settings=data["chat_settings"],
            scenario_settings=data.get("scenario_settings", {}),
            machine=Machine.from_json(data["machine"]),
            gated_out=data["gated_out"],
            capacity=loaded(CapacityRow, data.get("capacity", [])),
            ledger=loaded(CapacityRow, data.get("ledger", [])),
            disconnects=loaded(DisconnectRow, data.get("disconnects", [])),
            churn=loaded(ChurnRow, data.get("churn", [])),
            slow_consumers=loaded(SlowRow, data.get("slow_consumers", [])),
            idle=loaded(IdleRow, data.get("idle", [])),
            locust_ceiling=loaded(CeilingRow, data.get("locust_ceiling", [])),
            errors=loaded(ScenarioError, data.get("errors", [])),
            runs=loaded(Invocation, data.get("runs", [])),
        )

    @classmethod
    def load(cls, path: Path) -> Results:
        return cls.from_json(json.loads(path.read_text()))

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=1))


@dataclass(frozen=True, kw_only=True)
class LocustResults(Record):
    """What the users of one Locust process measured (users.results(), written where ``BENCH_OUT`` says)."""

    latency: dict[str, dict[str, int]] = field(default_factory=dict)  # histogram.py's buckets, by name
    counts: Counts = field(default_factory=dict)
    seconds: float = 0.0  # the measured window
    window: list[int] = field(default_factory=lambda: [0, 0])  # time.time_ns()
    span_seconds: float = 0.0  # from the first Churner's first cycle to the last one's end
