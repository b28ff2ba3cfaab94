"""A quick run of the benchmark code (`make test`): Locust's users against a chapter and the reference server."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from servers import BenchServer, locust_command, server_cores
from tests.harness import REPO

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def chapter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BenchServer]:
    server = BenchServer("websockets", tmp_path_factory.mktemp("logs")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BenchServer]:
    server = BenchServer("reference", tmp_path_factory.mktemp("logs")).start()
    yield server
    server.stop()


def run_locust(user: str, host: str, tmp_path: Path, users: int = 10) -> dict[str, Any]:
    """Locust, headless, for 4 s (measuring from 0.5 s after the users are spawned): what its users measured
    (benchmarks/locustfile.py's BENCH_OUT)."""
    out = tmp_path / f"{user}.json"
    environ = dict(os.environ, BENCH_OUT=str(out), BENCH_RATE="5", BENCH_ROOMS="2", BENCH_WARMUP="0.5")
    command = locust_command(user, "--headless", "--only-summary")
    command += ["-u", str(users), "-r", str(users), "-t", "4s", "--host", host, "--stop-timeout", "5"]
    finished = subprocess.run(command, env=environ, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.exists(), f"Locust wrote no results:\n{finished.stdout}\n{finished.stderr}"
    return dict(json.loads(out.read_text()))


@pytest.mark.parametrize("user", ["ChatMember", "BareMember"])
def test_members_count_every_message(chapter: BenchServer, user: str, tmp_path: Path) -> None:
    """Members of 2 rooms send and receive; each message reaches both of its room's 5 members, none missing or
    repeated, and (for the chat) each one is acked. The server's CPU time and peak memory are measured."""
    usage = chapter.measure()
    results = run_locust(user, chapter.urls[0], tmp_path)
    measured = usage.finish()
    assert measured["cpu_seconds"] > 0
    assert 10 < measured["peak_rss_mb"] < 1000
    counts = results["counts"]
    assert counts["sent"] > 20
    assert counts.get("missing", 0) == 0 and counts.get("repeated_or_reordered", 0) == 0
    assert not [name for name in counts if name.startswith(("closed", "error", "send_after"))], counts
    assert sum(results["latency"]["connect"].values()) == 10
    assert 2 < results["seconds"] < 4
    # Each message goes to the 5 members of its room; the ones sent as the test stopped may be on their way.
    assert 5 * counts["sent"] - 5 * 10 <= counts["delivered"] <= 5 * counts["sent"]
    if user == "ChatMember":
        assert counts["sent"] - 10 <= sum(results["latency"]["ack"].values()) <= counts["sent"]


def test_echo_against_the_reference(reference: BenchServer, tmp_path: Path) -> None:
    """The picows reference echoes every message of Locust's echo clients."""
    counts = run_locust("EchoClient", reference.urls[0], tmp_path)["counts"]
    assert counts["sent"] > 20
    assert counts["sent"] - 10 <= counts["delivered"] <= counts["sent"]
    assert counts.get("missing", 0) == 0


def test_two_processes_on_redis_are_pinned_and_measured(tmp_path: Path) -> None:
    """A "+redis" variant is two server processes and their redis-server, all on the server cores."""
    server = BenchServer("fastapi+redis", tmp_path).start()
    try:
        assert len(server.urls) == 2
        assert len(server.processes) >= 3
        for process in server.processes:
            assert set(process.cpu_affinity()) == server_cores(), process.cmdline()
        assert server.measure().finish()["peak_rss_mb"] > 20
    finally:
        server.stop()


def test_report_from_results(tmp_path: Path) -> None:
    """report.py turns results into REPORT.md (a table per scenario) and a chart."""
    from report import write_report

    def row(variant: str, user: str, rate: float, delivered: int, p99: float) -> dict[str, Any]:
        latency = {"50": p99 / 4, "95": p99 / 2, "99": p99}
        return {
            **{"variant": variant, "user": user, "rate": rate, "users": 10, "offered_per_s": 10 * rate},
            **{"sent": delivered // 5, "delivered": delivered, "deliveries_per_s": delivered / 4.0, "missing": 0},
            **{"repeated_or_reordered": 0, "failures": {}, "delivery_ms": latency, "ack_ms": latency},
            **{"cpu_seconds": 0.5, "peak_rss_mb": 50.0, "repeat": 0},
        }

    rows = [row("reference", "BareMember", rate, int(4000 * rate), 2.0 if rate < 8 else 500.0) for rate in (1, 4, 8)]
    rows += [
        row("fastapi", user, rate, int(3000 * rate), 5.0) for user in ("ChatMember", "BareMember") for rate in (1, 4)
    ]
    machine = {"cpu": "test", "cores": 2, "server_cores": [0], "generator_cores": [1], "python": "3.11"}
    results: dict[str, Any] = {
        **{"profile": "quick", "settings": {}, "chat_settings": {}, "gated_out": [], "fanout": rows},
        "machine": {**machine, "kernel": "6", "versions": {"locust": "2"}},
    }
    write_report(results, tmp_path)
    report = (tmp_path / "REPORT.md").read_text()
    assert "Locust's own ceiling (the picows reference's best sustained bare room): 4,000 deliveries/s" in report
    assert "| fastapi | chat protocol | 3,000 | 75 % ⚠ generator-bound |" in report
    assert "| fastapi | 4/s | 5.00 | 5.00 |" in report
    assert (tmp_path / "fanout.png").stat().st_size > 10_000
