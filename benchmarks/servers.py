"""The servers under test: each chapter (one process, or two on a Redis of their own) and the picows reference,
started with the benchmarks' settings, pinned to their own cores, and measured with psutil."""

from __future__ import annotations

import bisect
import contextlib
import os
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from tests.cluster import Cluster
from tests.harness import PortProcess, ServerProcess
from tests.implementations import IMPLEMENTATIONS, Implementation

BENCH_DIR = Path(__file__).resolve().parent
REFERENCE = Implementation("reference", (sys.executable, str(BENCH_DIR / "reference_server.py")))

# Identical for every chapter: the baselines on, no access log, and the limits moved out of the way, so that
# what is measured is the server, not its limits (a scenario that is about a limit sets it back).
SETTINGS = {
    "CHAT_BENCH_ENDPOINTS": "1",
    "CHAT_LOG_LEVEL": "warning",  # no access log line per request
    "CHAT_RATE_LIMIT": "100000",  # §13.3: frames per second per connection
    "CHAT_SEND_QUEUE": "4096",  # §13.4: frames queued per connection before 4001
}


@dataclass(frozen=True)
class Stack:
    """A server the benchmarks start: its command (run from the repository's root), its processes (on a
    redis-server of their own when ``redis``), and whether it answers HTTP (``/healthz``) or only WebSockets."""

    command: tuple[str, ...]
    label: str
    processes: int = 1
    redis: bool = False
    http: bool = True


PY = sys.executable
CHANNELS_STACK = (PY, str(BENCH_DIR / "channels_stack.py"))
STACKS: dict[str, Stack] = {
    **{name: Stack(impl.command, f"chapter {i}") for i, (name, impl) in enumerate(IMPLEMENTATIONS.items(), 1)},
    **{
        f"{name}+redis": Stack(impl.command, f"chapter {i}, 2 processes on Redis", processes=2, redis=True)
        for i, (name, impl) in enumerate(IMPLEMENTATIONS.items(), 1)
    },
    "reference": Stack(REFERENCE.command, "picows reference", http=False),
    # The naive servers, as the frameworks' tutorials write them (each chapter's naive.py).
    "naive-fastapi": Stack((PY, "01_fastapi/naive.py"), "naive FastAPI", http=False),
    "naive-channels": Stack((PY, "02_channels/naive.py"), "naive Channels", http=False),
    "naive-websockets": Stack((PY, "03_websockets/naive.py"), "naive websockets", http=False),
    # Chapter 2's cost ledger: one layer of the Channels stack swapped at a time (channels_stack.py).
    "naive-channels/no-hop": Stack((*CHANNELS_STACK, "naive", "--hop", "off"), "naive, no hop", http=False),
    "naive-channels/uvicorn": Stack((*CHANNELS_STACK, "naive", "--server", "uvicorn"), "naive on uvicorn", http=False),
    "naive-channels/uvicorn/no-hop": Stack(
        (*CHANNELS_STACK, "naive", "--server", "uvicorn", "--hop", "off"), "naive on uvicorn, no hop", http=False
    ),
    "naive-channels/redis": Stack((PY, "02_channels/naive.py"), "naive, Redis layer", redis=True, http=False),
    "channels/hop": Stack((*CHANNELS_STACK, "chapter", "--hop", "on"), "chapter 2 with the hop"),
    "channels/channels-loop": Stack(
        (*CHANNELS_STACK, "chapter", "--channels-loop"), "chapter 2 with Channels' consumer loop"
    ),
    "channels/channels-layer": Stack(
        (*CHANNELS_STACK, "chapter", "--channels-layer"), "chapter 2 with Channels' in-memory layer"
    ),
    "channels/uvicorn": Stack((*CHANNELS_STACK, "chapter", "--server", "uvicorn"), "chapter 2 on uvicorn"),
    "channels/redis": Stack(IMPLEMENTATIONS["channels"].command, "chapter 2, Redis layer", redis=True),
}
# Where a naive server's rooms are, for the capacity generator (the Channels tutorial's route ends with a /).
NAIVE_PATHS = {"naive-fastapi": "/ws/{room}", "naive-channels": "/ws/chat/{room}/", "naive-websockets": "/ws/{room}"}


def variants() -> list[str]:
    """The servers the Locust scenarios compare: the chapters, each also as two processes on Redis, the reference."""
    return [*IMPLEMENTATIONS, *(f"{name}+redis" for name in IMPLEMENTATIONS), "reference"]


def server_cores() -> set[int]:
    """The cores the servers run on: the first half of this process's cores (the load generator gets the rest).
    With one core, everything shares it."""
    cores = sorted(os.sched_getaffinity(0))
    return set(cores[: max(1, len(cores) // 2)])


def generator_cores() -> set[int]:
    cores = sorted(os.sched_getaffinity(0))
    return set(cores[len(cores) // 2 :]) or set(cores)


def taskset(cores: set[int]) -> list[str]:
    """The command prefix that runs a program on ``cores`` only (its threads and children too)."""
    return ["taskset", "-c", ",".join(map(str, sorted(cores)))]


def pinned(impl: Implementation, cores: set[int]) -> Implementation:
    return Implementation(impl.name, (*taskset(cores), *impl.command))


def locust_command(*arguments: str, locustfile: Path = BENCH_DIR / "locustfile.py") -> list[str]:
    """Locust on the generator's cores, with ``locustfile`` (benchmarks/locustfile.py) and ``arguments``."""
    locust = Path(sys.executable).with_name("locust")
    return [*taskset(generator_cores()), str(locust), "-f", str(locustfile), *arguments]


@dataclass(frozen=True)
class Used:
    """What some processes used between the start and the end of a measurement."""

    cpu_seconds: float
    peak_rss_mb: float


@dataclass
class Usage:
    """CPU seconds and resident memory of some processes (a server's, Redis included; or Locust's), sampled every
    100 ms with the time (time.time_ns()), so that the CPU of a part of the run can be told apart."""

    processes: list[psutil.Process]
    timeline: list[tuple[int, float, int]] = field(default_factory=list)  # (ns, CPU seconds, RSS bytes)
    stop: threading.Event = field(default_factory=threading.Event)
    cpu: dict[int, float] = field(default_factory=dict)  # pid -> CPU seconds last seen (kept once it has exited)

    def __post_init__(self) -> None:
        self.take()
        self.thread = threading.Thread(target=self.sample, daemon=True)
        self.thread.start()

    def take(self) -> None:
        rss = 0
        for process in self.processes:
            with contextlib.suppress(psutil.Error), process.oneshot():  # psutil.Error: it has just exited
                times = process.cpu_times()
                self.cpu[process.pid] = times.user + times.system
                rss += process.memory_info().rss
        self.timeline.append((time.time_ns(), sum(self.cpu.values()), rss))

    def sample(self) -> None:
        while not self.stop.wait(0.1):
            self.take()

    def finish(self) -> Used:
        """Stop sampling: the CPU seconds used and the peak RSS since the start."""
        self.stop.set()
        self.thread.join()
        self.take()
        return Used(cpu_seconds=self.cpu_between(0, 2**63), peak_rss_mb=self.peak_rss() / 2**20)

    def cpu_between(self, start_ns: int, end_ns: int) -> float:
        """CPU seconds used from ``start_ns`` to ``end_ns`` (clipped to the samples, interpolated between them)."""
        return self.cpu_at(end_ns) - self.cpu_at(start_ns)

    def cpu_at(self, ns: int) -> float:
        times = [sample[0] for sample in self.timeline]
        i = bisect.bisect_left(times, ns)
        if i == 0:
            return self.timeline[0][1]
        if i == len(times):
            return self.timeline[-1][1]
        (t0, c0, _), (t1, c1, _) = self.timeline[i - 1], self.timeline[i]
        return c0 + (c1 - c0) * (ns - t0) / max(t1 - t0, 1)

    def peak_rss(self) -> int:
        return max(sample[2] for sample in self.timeline)

    def rss(self) -> int:
        """The latest sample's RSS, bytes."""
        return self.timeline[-1][2]


class BenchServer:
    """``variant`` (a key of ``STACKS``) started with ``SETTINGS`` (and ``env``) on the server cores."""

    def __init__(self, variant: str, log_dir: Path, env: Mapping[str, str] | None = None) -> None:
        self.variant = variant
        self.stack = stack = STACKS[variant]
        settings = {**SETTINGS, **(env or {})}
        impl = pinned(Implementation(variant.replace("/", "-"), stack.command), server_cores())
        process = ServerProcess if stack.http else PortProcess
        self.server: ServerProcess | Cluster
        if stack.redis:
            self.server = Cluster(impl, settings, log_dir, processes=stack.processes)
            if not stack.http:
                self.server.members = [process(impl, self.server.env, log_dir) for _ in range(stack.processes)]
        else:
            self.server = process(impl, settings, log_dir)

    @property
    def urls(self) -> list[str]:
        return self.server.urls

    def start(self) -> BenchServer:
        if isinstance(self.server, Cluster):
            self.server.start()
            # Redis is part of what this variant costs: pin it with the servers, and measure it too.
            assert self.server.redis.process is not None
            redis = psutil.Process(self.server.redis.process.pid)
            for thread in redis.threads():  # its background threads too (psutil's cpu_affinity sets the first)
                os.sched_setaffinity(thread.id, server_cores())
            members = [member.process for member in self.server.members]
            self.processes = [redis, *(psutil.Process(p.pid) for p in members if p is not None)]
        else:
            self.server.start()
            assert self.server.process is not None
            self.processes = [psutil.Process(self.server.process.pid)]
        self.processes = [leaf for process in self.processes for leaf in with_children(process)]
        return self

    def measure(self) -> Usage:
        """Start measuring CPU time and peak RSS; ``finish()`` on the result gives the numbers."""
        return Usage(self.processes)

    def stop(self) -> None:
        self.server.stop()


def with_children(process: psutil.Process) -> list[psutil.Process]:
    """``taskset`` execs the server, so the process is the server itself; a server that forks workers has them."""
    return [process, *process.children(recursive=True)]
