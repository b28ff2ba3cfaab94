"""One headless Locust run on the generator's cores, with the server's CPU and Locust's own measured."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

from histogram import Histogram
from rows import LocustResults
from servers import BenchServer, Usage, locust_command
from tests.harness import REPO

WARMUP = 1.0  # seconds, after every user is spawned, before measuring (users.py's BENCH_WARMUP)
STARTED = time.monotonic()


def say(message: str) -> None:
    """Progress, with the time since the start."""
    elapsed = int(time.monotonic() - STARTED)
    print(f"[{elapsed // 60:3d}:{elapsed % 60:02d}] {message}", flush=True)


@dataclass
class Run:
    """What one Locust run measured: its users' results (users.results()), the server's and Locust's usage."""

    results: LocustResults
    server: Usage
    generator: Usage
    output: str

    @property
    def counts(self) -> dict[str, int]:
        return self.results.counts

    def latency(self, name: str) -> Histogram:
        return Histogram.from_json(self.results.latency.get(name, {}))

    def percentiles(self, name: str, *ps: float) -> dict[str, float]:
        histogram = self.latency(name)
        return {f"{p:g}": histogram.percentile(p) for p in ps}

    @property
    def window(self) -> tuple[int, int]:
        start, end = self.results.window
        return int(start), int(end)

    def server_cpu(self) -> float:
        """The server's CPU seconds inside the measured window."""
        return self.server.cpu_between(*self.window)

    def generator_load(self) -> float:
        """Locust's CPU inside the measured window, as a share of the one core its one process can use."""
        start, end = self.window
        if end <= start:
            return 0.0
        return self.generator.cpu_between(start, end) / ((end - start) / 1e9)

    def failures(self) -> dict[str, int]:
        return {k: v for k, v in self.counts.items() if k.startswith(("closed", "error", "send_after"))}


def locust(
    server: BenchServer,
    users: list[str],
    count: int,
    env: dict[str, str],
    out: Path,
    *,
    limit: float,
    spawn_rate: float = 100,
    until: Callable[[], None] | None = None,
    locustfile: Path | None = None,
) -> Run:
    """One headless Locust run of ``count`` users (of the classes ``users``) against ``server``, on the
    generator's cores, for at most ``limit`` seconds (less if a user ends it, or when ``until`` returns).
    ``locustfile`` (with its users.py beside it) runs other users than benchmarks/' (an earlier version, to
    compare)."""
    environ = {
        **os.environ,
        "BENCH_OUT": str(out),
        "BENCH_HOSTS": ",".join(server.urls),
        "BENCH_WARMUP": str(WARMUP),
        **env,
    }
    arguments = [*users, "--headless", "--only-summary", "-u", str(count), "-r", f"{spawn_rate:g}"]
    command = locust_command(*arguments, **({"locustfile": locustfile} if locustfile else {}))
    command += ["-t", f"{limit:.0f}s", "--host", server.urls[0], "--stop-timeout", "5"]
    out.unlink(missing_ok=True)
    log = out.with_suffix(".log")
    usage = server.measure()
    with log.open("w") as output:
        process = subprocess.Popen(command, env=environ, cwd=REPO, stdout=output, stderr=subprocess.STDOUT)
        generator = Usage([psutil.Process(process.pid)])  # taskset execs Locust: the same process
        try:
            if until is not None:
                until()
                process.send_signal(signal.SIGTERM)  # Locust stops its users and writes its results
            process.wait(timeout=limit + 120)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    usage.finish()
    generator.finish()
    text = log.read_text()
    if out.exists():
        results = LocustResults.from_json(json.loads(out.read_text()))
    else:
        results = LocustResults(counts={"error locust": 1})
        say(f"Locust wrote no results; its output ends with:\n{text[-1500:]}")
    return Run(results, usage, generator, text)
