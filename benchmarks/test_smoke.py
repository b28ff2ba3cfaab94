"""A quick run of the benchmark code (`make test`): Locust's users against a chapter and the reference server."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rows import CAPACITY_ROWS, LEDGER_ROWS, LocustResults, Results
from run import Profile, capacity_rows, churn, disconnects, idle, log_sizes, slow_consumers, tracebacks
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


def run_locust(user: str, host: str, tmp_path: Path, users: int = 10) -> LocustResults:
    """Locust, headless, for 4 s (measuring from 0.5 s after the users are spawned): what its users measured
    (benchmarks/locustfile.py's BENCH_OUT)."""
    out = tmp_path / f"{user}.json"
    environ = dict(os.environ, BENCH_OUT=str(out), BENCH_RATE="5", BENCH_ROOMS="2", BENCH_WARMUP="0.5")
    command = locust_command(user, "--headless", "--only-summary")
    command += ["-u", str(users), "-r", str(users), "-t", "4s", "--host", host, "--stop-timeout", "5"]
    finished = subprocess.run(command, env=environ, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.exists(), f"Locust wrote no results:\n{finished.stdout}\n{finished.stderr}"
    return LocustResults.from_json(json.loads(out.read_text()))


@pytest.mark.parametrize("user", ["ChatMember", "BareMember"])
def test_members_count_every_message(chapter: BenchServer, user: str, tmp_path: Path) -> None:
    """Members of 2 rooms send and receive; each message reaches both of its room's 5 members, none missing or
    repeated, and (for the chat) each one is acked. The server's CPU time and peak memory are measured."""
    usage = chapter.measure()
    results = run_locust(user, chapter.urls[0], tmp_path)
    measured = usage.finish()
    assert measured.cpu_seconds > 0
    assert 10 < measured.peak_rss_mb < 1000
    counts = results.counts
    assert counts["sent"] > 20
    assert counts.get("missing", 0) == 0 and counts.get("repeated_or_reordered", 0) == 0
    assert not [name for name in counts if name.startswith(("closed", "error", "send_after"))], counts
    assert sum(results.latency["connect"].values()) == 10
    assert 2 < results.seconds < 4
    # Each message goes to the 5 members of its room; the ones sent as the test stopped may be on their way.
    assert 5 * counts["sent"] - 5 * 10 <= counts["delivered"] <= 5 * counts["sent"]
    if user == "ChatMember":
        assert counts["sent"] - 10 <= sum(results.latency["ack"].values()) <= counts["sent"]


def test_echo_against_the_reference(reference: BenchServer, tmp_path: Path) -> None:
    """The picows reference echoes every message of Locust's echo clients."""
    counts = run_locust("EchoClient", reference.urls[0], tmp_path).counts
    assert counts["sent"] > 20
    assert counts["sent"] - 10 <= counts["delivered"] <= counts["sent"]
    assert counts.get("missing", 0) == 0


def test_locust_ceiling_step(reference: BenchServer, tmp_path: Path) -> None:
    """Scenario 7's step: Locust's CPU and the server's in the window, every message delivered."""
    from locust_ceiling import step

    measured = step(reference, "BareMember", 5, rooms=2, members=5, seconds=1.5, out_dir=tmp_path)
    assert measured.failures == {} and measured.sent > 10, measured.line()
    assert measured.sent * 5 - 5 * 10 <= measured.delivered <= measured.sent * 5, measured.line()
    assert 0 < measured.load < 1.5 and 0 < measured.server_load < 1.5 and measured.us_per_delivery > 0, measured.line()


def test_two_processes_on_redis_are_pinned_and_measured(tmp_path: Path) -> None:
    """A "+redis" variant is two server processes and their redis-server, all on the server cores."""
    server = BenchServer("fastapi+redis", tmp_path).start()
    try:
        assert len(server.urls) == 2
        assert len(server.processes) >= 3
        for process in server.processes:
            for thread in process.threads():
                assert os.sched_getaffinity(thread.id) == server_cores(), process.cmdline()
        assert server.measure().finish().peak_rss_mb > 20
    finally:
        server.stop()


TINY = Profile(
    repeats=1,
    capacity_rooms=2,
    capacity_members=3,
    capacity_seconds=0.5,
    capacity_warmup=0.2,
    seconds=2,
    rooms=2,
    members=3,
    leaves=2,
    churn=40,
    idle=(30,),
    ceiling_seconds=1,
)


# Every server of scenario 1, and the launcher's other ways of running chapter 2's stack (scenario 2).
@pytest.mark.parametrize(
    "variant",
    [
        *dict.fromkeys(name for name, _ in CAPACITY_ROWS if not name.endswith("+redis")),
        "naive-channels/uvicorn/no-hop",
        "naive-channels/redis",
        "channels/hop",
        "channels/channels-loop",
        "channels/channels-layer",
        "channels/uvicorn",
    ],
)
def test_capacity_generator(variant: str, tmp_path: Path) -> None:
    """Scenarios 1 and 2, tiny: the capacity generator's closed loop (and scenario 1's open-loop steps) against
    each server, every room's messages delivered to every member of it exactly once, in order."""
    # Scenario 1 with one open-loop step (of its four), to keep `make test` short.
    rows, steps = (CAPACITY_ROWS, (0.5,)) if variant in dict(CAPACITY_ROWS) else (LEDGER_ROWS, ())
    found = capacity_rows(rows, steps)(variant, TINY, tmp_path, 0)
    assert [row.kind for row in found] == [kind for name, kind in rows if name == variant]
    for row in found:
        assert row.error is None and row.failures == {}, row
        assert len(row.phases) == 1 + len(steps), row
        for phase in row.phases:
            assert phase.expected > 0 and phase.deliveries_per_s > 0 and (phase.server_us_per_delivery or 0) > 0
            # Channels' in-memory layer drops group messages past its capacity (100 per consumer), silently: the
            # naive consumer, offered all it can carry, may lose some. Every other server loses nothing.
            if variant != "naive-channels" or phase.mode == "closed":
                assert phase.missing == phase.repeated == phase.reordered == 0, phase
                assert phase.complete and phase.expected == phase.delivered, phase


def test_disconnects(tmp_path: Path) -> None:
    """Scenario 3: each way of leaving is heard by every member of the room, and the gauge comes back."""
    rows = disconnects("websockets", TINY, tmp_path, 0)
    assert [row.way for row in rows] == ["clean", "vanish", "silent"]
    for row in rows:
        assert row.failures == {} and row.missing == 0 and row.complete and row.leaves == 2, row
        assert row.heard_by_all_ms["50"] > 0 and row.connections_back_ms["50"] > 0, row
    codes = {row.way: row.leaver_codes for row in rows}
    assert codes == {"clean": {"1000": 2}, "vanish": {"1006": 2}, "silent": {"4000": 2}}
    silent = rows[2].heard_by_all_ms["50"]
    assert 1500 < silent < 4000, "CHAT_HEARTBEAT_TIMEOUT is 2 s in this scenario, counted from the last pong"


def test_churn(tmp_path: Path) -> None:
    """Scenario 4: every cycle completes, and no connection is left behind."""
    (row,) = churn("fastapi", TINY, tmp_path, 0)
    assert row.cycles == 40 and row.failures == {} and row.connections_left == 0, row
    assert 1 < row.cycles_per_s < 5000, row
    assert len(row.rss_timeline) > 2


def test_slow_consumers(tmp_path: Path) -> None:
    """Scenario 5: every slow reader is closed with 4001 and resumes; the healthy members miss nothing."""
    with_slow, without = slow_consumers("websockets", TINY, tmp_path, 0)
    assert with_slow.slow_codes == {"4001": 2} and with_slow.slow_resumed == 2, with_slow
    for row in (with_slow, without):
        assert row.failures == {} and row.missing == 0 and row.repeated_or_reordered == 0, row
        assert row.complete, row


def test_idle(tmp_path: Path) -> None:
    """Scenario 6: every idle member connects, and the server's RSS grows with them."""
    (row,) = idle("channels", TINY, tmp_path, 0)
    assert row.all_connected and row.failures == {} and 1 < row.kb_per_connection < 1000, row


def test_report_from_results(tmp_path: Path) -> None:
    """report.py turns results into REPORT.md (a table per scenario) and its charts, from results.json as
    rows.py reads and writes it."""
    from report import write_report

    def phase(per_s: float, us: float, share: float = 0.0, p99: float = 2.0, load: float = 0.5) -> dict[str, Any]:
        latency = {"50": p99 / 4, "99": p99, "99.9": 2 * p99}
        return {
            **{"mode": "open" if share else "closed", "offered_per_s": per_s / 50 if share else 0.0},
            **{"sent": 20, "window_sent": 20, "delivered": 1000, "expected": 1000, "missing": 0, "repeated": 0},
            **{"reordered": 0, "complete": True, "window": [0, 10**9], "seconds": 1.0, "deliveries_per_s": per_s},
            **{"generator_cpu": load, "server_load": 1.0 if load < 0.9 else 0.8, "generator_bound": load >= 0.9},
            **{"server_cpu_seconds": per_s * us / 1e6, "server_us_per_delivery": us, "generator_us_per_delivery": 1},
            **{"latency": {}, "latency_ms": latency, "drained_s": 0.0},
            **({"share": share} if share else {}),
        }

    def run(variant: str, kind: str, per_s: float, us: float, load: float = 0.5) -> dict[str, Any]:
        steps = [phase(per_s * share, us, share, p99=1.0 + 10 * share) for share in (0.25, 0.5, 0.75, 1.0)]
        return {
            **{"variant": variant, "label": variant, "kind": kind, "rooms": 1, "members": 50},
            **{"phases": [phase(per_s, us, load=load), *steps], "failures": {}, "others": 0, "repeat": 0},
        }

    capacity = [
        run("fastapi", "chat", 60_000, 16.0),
        run("reference", "bare", 150_000, 5.0, load=0.9),
        run("naive-fastapi", "naive", 80_000, 12.0),
    ]
    ledger = [{**run("naive-channels", "naive", 6000, 160.0), "phases": [phase(6000, 160.0)]}]
    ledger += [{**run("naive-channels/no-hop", "naive", 9000, 105.0), "phases": [phase(9000, 105.0)]}]
    times = {"50": 3.0, "99": 4.0, "100": 5.0}
    disconnect: dict[str, Any] = {"heard_ms": times, "heard_by_all_ms": times, "connections_back_ms": times}
    disconnect |= {"survivors_delivered": 90, "missing": 0, "repeated_or_reordered": 0, "failures": {}, "repeat": 0}
    disconnect |= {"leaver_codes": {"1006": 3}, "leaves": 5, "complete": True, "survivors_sent": 90}
    churned: dict[str, Any] = {
        "variant": "fastapi",
        "cycles": 40,
        "cycles_per_s": 20.0,
        "cycle_ms": times,
        "failures": {},
    }
    churned |= {"connections_left": 0.0, "rss_before_mb": 60.0, "rss_half_mb": 61.0, "rss_end_mb": 61.5, "repeat": 0}
    churned |= {"rss_timeline": [[0.0, 60.0], [1.0, 61.0], [2.0, 61.5]], "connections_back_s": 0.1}
    slow: dict[str, Any] = {
        "variant": "fastapi",
        "delivered": 100,
        "expected": 100,
        "complete": True,
        "missing": 0,
        "repeat": 0,
    }
    slow |= {"repeated_or_reordered": 0, "delivery_ms": times, "closed_after_s": 12.0, "failures": {}}
    slow |= {"slow_codes": {"4001": 2}, "slow_resumed": 2, "peak_rss_mb": 70.0, "seconds": 10.0, "sent": 10}
    idle_row: dict[str, Any] = {
        "variant": "fastapi",
        "connections": 1000,
        "all_connected": True,
        "rss_before_mb": 60,
        "rss_mb": 100,
    }
    idle_row |= {"kb_per_connection": 40.96, "connect_ms": times, "failures": {}, "repeat": 0, "connected": 1000}
    step = {"user": "BareMember", "users": 200, "rate": 20.0, "fanout": 20, "seconds": 10.0, "sent": 40_000}
    step |= {"delivered": 800_000, "cpu_seconds": 9.6, "server_cpu_seconds": 3.8, "p99_ms": 9.5, "failures": {}}
    machine = {"cpu": "test", "cores": 2, "server_cores": [0], "generator_cores": [1], "python": "3.11"}
    results = Results.from_json(
        {
            **{"profile": "quick", "settings": {}, "chat_settings": {}, "gated_out": [], "capacity": capacity},
            "ledger": ledger,
            "machine": {**machine, "kernel": "6", "versions": {"locust": "2"}},
            "disconnects": [{**disconnect, "variant": "fastapi", "way": way} for way in ("clean", "vanish", "silent")],
            "churn": [churned],
            "slow_consumers": [{**slow, "slow_readers": 2}, {**slow, "slow_readers": 0, "slow_codes": {}}],
            "idle": [
                idle_row,
                {**idle_row, "connections": 5000, "connected": 5000, "rss_mb": 200, "kb_per_connection": 28.67},
            ],
            "locust_ceiling": [{"variant": "reference", **step, "steps": [step], "repeat": 0}],
        }
    )
    results.save(tmp_path / "results.json")
    assert Results.load(tmp_path / "results.json") == results
    write_report(Results.load(tmp_path / "results.json"), tmp_path)
    report = (tmp_path / "REPORT.md").read_text()
    assert report.index("| picows reference |") < report.index("| naive FastAPI |") < report.index("| chapter 1 |")
    assert (
        "| picows reference | bare room (§18) | 150,000 | 1.00 | - | 5.0 | 1,000 of 1,000 |"
        " 80 % / 90 % ⚠ generator-bound |" in report
    )
    assert "| chapter 1 | chat protocol | 60,000 | 0.40 | 0.75 | 16.0 | 1,000 of 1,000 | 100 % / 50 % |" in report
    assert "| chapter 1 | chat protocol | 0.9 / 3.5 / 7.0 (15,000/s) | 1.5 / 6.0 / 12.0 (30,000/s) |" in report
    assert "| naive consumer, without the hop | 9,000 | 105.0 | -55.0 | 1,000 of 1,000 |" in report
    assert "| fastapi | vanish (5) | 3.0 (5.0) | 3.0 (5.0) | 90 / 0 / 0 | 1006: 3 | none |" in report
    assert "| fastapi | 40 | 20 | 3.0 / 4.0 | none | 0 | 60 → 61 → 62 | 0.5 |" in report
    assert "| fastapi | 4.0 / 4.0 | 100 of 100, 0, 0 | 4001: 2 | 12.0 | 2 of 2 | none | 70 / 70 |" in report
    assert "| fastapi | 1000 | 60 → 100 | 41.0 | - | 3.0 / 4.0 | none |" in report
    assert "| fastapi | 5000 | 60 → 200 | 28.7 | 25.6 | 3.0 / 4.0 | none |" in report
    assert "| BareMember | picows reference | 80,000 | 96 % | 38 % | 12.0 | 80,000 | Locust |" in report
    for chart in ("capacity", "latency", "disconnects", "churn"):
        assert (tmp_path / f"{chart}.png").stat().st_size > 10_000, chart


def test_a_server_traceback_is_an_error(tmp_path: Path) -> None:
    """A traceback a server writes while a scenario runs is reported, with the part of the log it wrote kept;
    what the log held before, and a log without one, are not."""
    work, keep = tmp_path / "work", tmp_path / "kept"
    work.mkdir()
    (work / "fastapi-1.log").write_text("Traceback (most recent call last):\nOldError: before\n")
    (work / "redis-2.log").write_text("ready\n")
    before = log_sizes(work)
    with (work / "fastapi-1.log").open("a") as log:
        log.write('INFO: ok\nTraceback (most recent call last):\n  File "x.py"\nRuntimeError: readuntil()\nINFO: on\n')
    with (work / "redis-2.log").open("a") as log:
        log.write("still fine\n")
    assert tracebacks(work, before, keep) == [f"traceback in fastapi-1.log (kept in {keep}): RuntimeError: readuntil()"]
    assert (keep / "fastapi-1.log").read_text().startswith("INFO: ok\nTraceback")
    assert not (keep / "redis-2.log").exists()
    assert tracebacks(work, log_sizes(work), keep) == []
