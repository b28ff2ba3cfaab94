"""``make bench`` and ``make bench-quick``: the scenarios against every server, results in benchmarks/results/."""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from importlib.metadata import version
from pathlib import Path

from gauge import chat_connections
from locust_ceiling import ceiling
from locust_run import WARMUP, locust, say
from report import write_report
from rows import (
    CAPACITY_ROWS,
    LEDGER_ROWS,
    CapacityRow,
    CeilingRow,
    ChurnRow,
    Counts,
    DisconnectRow,
    IdleRow,
    Invocation,
    Machine,
    Percentiles,
    Record,
    Results,
    ScenarioError,
    SlowRow,
)
from servers import (
    BENCH_DIR,
    NAIVE_PATHS,
    SETTINGS,
    BenchServer,
    generator_cores,
    server_cores,
    taskset,
    variants,
)
from tests.harness import REPO

Scenario = Callable[[str, "Profile", Path, int], Sequence[Record]]  # (server, profile, work folder, repeat) → rows


@dataclass(frozen=True)
class Profile:
    repeats: int  # of every measurement, interleaved across servers
    # Scenarios 1 and 2 (capacity.py): rooms x members, each measured window after a warm-up.
    capacity_rooms: int
    capacity_members: int  # per room
    capacity_seconds: float
    capacity_warmup: float
    # Scenarios 3-6 (Locust).
    seconds: float  # of scenario 5's run without slow readers
    rooms: int  # scenario 4's
    members: int  # per room, scenario 3's
    leaves: int  # per way of leaving
    churn: int  # connect → chat → disconnect cycles
    idle: tuple[int, ...]  # idle connections
    # Scenario 7: Locust's own ceiling, each step measured for this long.
    ceiling_seconds: float


PROFILES = {
    "quick": Profile(
        repeats=1,
        capacity_rooms=1,
        capacity_members=50,
        capacity_seconds=2,
        capacity_warmup=0.5,
        seconds=4,
        rooms=4,
        members=10,
        leaves=2,
        churn=600,
        idle=(200, 1000),
        ceiling_seconds=3,
    ),
    "full": Profile(
        repeats=3,
        capacity_rooms=1,
        capacity_members=50,
        capacity_seconds=5,
        capacity_warmup=1,
        seconds=10,
        rooms=10,
        members=20,
        leaves=5,
        churn=3000,
        idle=(1000, 5000),
        ceiling_seconds=8,
    ),
}

# Scenario 3: pings every second, and 2 s of silence closes with 4000 (SPEC.md §11), so that a silent client's
# leave takes seconds, not the default 40.
HEARTBEAT = {"CHAT_HEARTBEAT_INTERVAL": "1", "CHAT_HEARTBEAT_TIMEOUT": "2"}
# Scenario 5: the send queue back to its default (it is what is measured), and texts of 2000 characters, the
# longest SPEC.md allows, so that the kernel's socket buffers (up to 4 MB here) fill in seconds.
SLOW = {"CHAT_SEND_QUEUE": "256"}
SLOW_ROOMS, SLOW_MEMBERS, SLOW_RATE, SLOW_TEXT = 2, 10, 10.0, 2000
# Scenario 6: idle members in rooms of this many. Not one big room: filling a room of n members costs n²
# presence frames (SPEC.md §10: each arrival, one small frame to each member), the generator's time, not the
# server's.
IDLE_ROOM = 10
IDLE_SPAWN_RATE = 100  # connections per second


def chapter(variant: str) -> str:
    """The chapter a server is a variant of (fastapi for naive-fastapi or fastapi+redis), or "reference"."""
    return variant.removeprefix("naive-").split("/")[0].removesuffix("+redis")


def gate(name: str) -> bool:
    """TechEmpower's verify step: a chapter is benchmarked only if a quick conformance run against it passes."""
    if name == "reference":
        return True  # not the chat protocol: nothing to verify but SPEC.md §18, which the smoke test checks
    say(f"Gate: a conformance smoke run against {name}")
    command = [sys.executable, "-m", "pytest", "tests/test_07_messages.py", f"--impl={name}", "-q", "-x"]
    finished = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    if finished.returncode != 0:
        say(f"{name}: the conformance smoke run failed; not benchmarked.\n{finished.stdout[-2000:]}")
    return finished.returncode == 0


def complete(counts: dict[str, int], per_second: float, members: int) -> bool:
    """Every message sent in the window reached each of the ``members`` of its room, but those still on their way
    when Locust stopped (half a second's worth of the ``per_second`` sent, and 1 %)."""
    expected = counts.get("sent", 0) * members
    allowance = per_second * 0.5 * members + 0.01 * expected
    return counts.get("sent", 0) > 0 and counts.get("delivered", 0) >= expected - allowance


def generate(
    server: BenchServer, kind: str, profile: Profile, out: Path, steps: tuple[float, ...], repeat: int
) -> CapacityRow:
    """One run of the capacity generator (capacity.py) on the generator's cores against ``server``."""
    path = NAIVE_PATHS[server.variant.split("/")[0]] if kind == "naive" else ""
    command = [
        *taskset(generator_cores()),
        sys.executable,
        str(BENCH_DIR / "capacity.py"),
        ",".join(server.urls),
        *("--kind", kind, "--path", path),
        *("--rooms", str(profile.capacity_rooms), "--members", str(profile.capacity_members)),
        *("--seconds", f"{profile.capacity_seconds:g}", "--warmup", f"{profile.capacity_warmup:g}"),
        *("--steps", ",".join(f"{share:g}" for share in steps), "--out", str(out)),
        *(f"--server-pid={process.pid}" for process in server.processes),
        f"--server-cores={len(server_cores())}",
    ]
    limit = 60 + (len(steps) + 1) * (profile.capacity_seconds + profile.capacity_warmup + 10)
    out.unlink(missing_ok=True)
    finished = subprocess.run(command, cwd=BENCH_DIR, capture_output=True, text=True, timeout=limit)
    if not out.exists():
        return CapacityRow(
            variant=server.variant,
            label=server.stack.label,
            kind=kind,
            rooms=profile.capacity_rooms,
            members=profile.capacity_members,
            phases=[],
            failures={},
            error=f"no results: {finished.stderr[-1500:]}",
            others=0,
            repeat=repeat,
        )
    server_named = {"variant": server.variant, "label": server.stack.label, "repeat": repeat}
    return CapacityRow.from_json({**json.loads(out.read_text()), **server_named})


def capacity_rows(
    rows: list[tuple[str, str]], steps: tuple[float, ...]
) -> Callable[[str, Profile, Path, int], list[CapacityRow]]:
    """Scenario 1 or 2 for one server: each of its ``rows``, a closed loop, then an open loop at each of the
    ``steps`` (shares of the closed loop's deliveries per second)."""

    def scenario(variant: str, profile: Profile, work: Path, repeat: int) -> list[CapacityRow]:
        server = BenchServer(variant, work).start()
        found: list[CapacityRow] = []
        try:
            for kind in [kind for name, kind in rows if name == variant]:
                out = work / f"capacity-{variant.replace('/', '-')}-{kind}-{repeat}.json"
                row = generate(server, kind, profile, out, steps, repeat)
                found.append(row)
                say(f"  {variant:29} {kind:5} {progress(row)}")
        finally:
            server.stop()
        return found

    scenario.__name__ = "capacity" if steps else "ledger"
    return scenario


def progress(row: CapacityRow) -> str:
    """What a capacity run measured, in a line: its closed loop, the p99 of each open loop, what went wrong."""
    said = "no closed loop"
    if row.phases:
        closed = row.phases[0]
        said = (
            f"{closed.deliveries_per_s:9,.0f} deliveries/s, {closed.server_us_per_delivery or 0:6.1f} µs each,"
            f" {closed.delivered:,} of {closed.expected:,} delivered, generator at {100 * closed.generator_cpu:.0f} %"
        )
    said += "".join(
        f"; at {100 * (step.share or 0):.0f} %: p99 {step.latency_ms['99']:.1f} ms" for step in row.phases[1:]
    )
    return said + (f"; {row.error}" if row.error else "") + (f"; {row.failures}" if row.failures else "")


capacity = capacity_rows(CAPACITY_ROWS, (0.25, 0.5, 0.75, 1.0))
ledger = capacity_rows(LEDGER_ROWS, ())


def disconnects(variant: str, profile: Profile, work: Path, repeat: int) -> list[DisconnectRow]:
    """Scenario 3: a member of a chatting room leaves cleanly, vanishes or goes silent, again and again: how long
    until the others hear it, and until ``chat_connections`` is back; the others must lose nothing."""
    rows: list[DisconnectRow] = []
    rooms, members = 2, profile.members
    server = BenchServer(variant, work, HEARTBEAT).start()
    try:
        for way in ("clean", "vanish", "silent"):
            env = {
                **{"BENCH_RATE": "2", "BENCH_ROOMS": str(rooms), "BENCH_MEMBERS": str(members)},
                **{"BENCH_LEAVE": way, "BENCH_CYCLES": str(profile.leaves)},
            }
            out = work / f"disconnects-{variant}-{way}-{repeat}.json"
            run = locust(server, ["ChatMember", "Leaver"], rooms * members + 1, env, out, limit=60 + 6 * profile.leaves)
            counts = run.counts
            row = DisconnectRow(
                variant=variant,
                way=way,
                leaves=counts.get("leaves", 0),
                complete=complete(counts, rooms * members, members),
                heard_ms=run.percentiles("leave heard", 50, 99),
                heard_by_all_ms=run.percentiles("leave heard by all", 50, 100),
                connections_back_ms=run.percentiles("connections back", 50, 100),
                leaver_codes={k.removeprefix("leaver got "): v for k, v in counts.items() if k.startswith("leaver")},
                survivors_sent=counts.get("sent", 0),
                survivors_delivered=counts.get("delivered", 0),
                missing=counts.get("missing", 0),
                repeated_or_reordered=counts.get("repeated_or_reordered", 0),
                failures=run.failures(),
                repeat=repeat,
            )
            rows.append(row)
            say(
                f"  {variant:17} {way:6}: heard by all after {row.heard_by_all_ms['50']:8.1f} ms (median),"
                f" chat_connections back after {row.connections_back_ms['50']:8.1f} ms; survivors missed"
                f" {row.missing}, failures {row.failures or 'none'}"
            )
    finally:
        server.stop()
    return rows


@dataclass(frozen=True)
class Half:
    """What one half of a churn run measured."""

    cycles: int
    seconds: float  # the first cycle's start to the last one's end
    cycle_ms: Percentiles
    failures: Counts
    connections_after: float  # chat_connections, against before the run
    connections_back_s: float
    rss_mb: float


def churn(variant: str, profile: Profile, work: Path, repeat: int) -> list[ChurnRow]:
    """Scenario 4: connect → chat → disconnect cycles, in two halves: errors, ``chat_connections`` back to
    where it was, and the server's RSS over the run (growth in the second half is what a leak looks like)."""
    server = BenchServer(variant, work).start()
    try:
        start = time.time_ns()
        usage = server.measure()
        before = chat_connections(server.urls)
        halves: list[Half] = []
        for half in (1, 2):
            env = {"BENCH_ROOMS": str(profile.rooms), "BENCH_CYCLES": str(profile.churn // 2)}
            out = work / f"churn-{variant}-{half}-{repeat}.json"
            run = locust(server, ["Churner"], 20, env, out, limit=60 + profile.churn / 20)
            ended = time.monotonic()
            while (now := chat_connections(server.urls)) != before and time.monotonic() - ended < 30:
                time.sleep(0.01)  # poll interval
            usage.take()
            halves.append(
                Half(
                    cycles=run.counts.get("cycles", 0),
                    seconds=run.results.span_seconds,
                    cycle_ms=run.percentiles("cycle", 50, 99),
                    failures=run.failures(),
                    connections_after=now - before,
                    connections_back_s=time.monotonic() - ended,
                    rss_mb=usage.rss() / 2**20,
                )
            )
        usage.finish()
    finally:
        server.stop()
    first, second = halves
    row = ChurnRow(
        variant=variant,
        cycles=first.cycles + second.cycles,
        cycles_per_s=(first.cycles + second.cycles) / max(first.seconds + second.seconds, 1e-3),
        cycle_ms=second.cycle_ms,
        failures={
            k: first.failures.get(k, 0) + second.failures.get(k, 0) for k in {**first.failures, **second.failures}
        },
        connections_left=second.connections_after,
        connections_back_s=max(first.connections_back_s, second.connections_back_s),
        rss_before_mb=usage.timeline[0][2] / 2**20,
        rss_half_mb=first.rss_mb,
        rss_end_mb=second.rss_mb,
        rss_timeline=[[(t - start) / 1e9, rss / 2**20] for t, _, rss in usage.timeline[::5]],
        repeat=repeat,
    )
    say(
        f"  {variant:17} {row.cycles} cycles, {row.cycles_per_s:.0f}/s, failures {row.failures or 'none'},"
        f" {row.connections_left:g} connections left, RSS {row.rss_before_mb:.0f} → {row.rss_half_mb:.0f}"
        f" → {row.rss_end_mb:.0f} MB"
    )
    return [row]


def slow_consumers(variant: str, profile: Profile, work: Path, repeat: int) -> list[SlowRow]:
    """Scenario 5: one member per room stops reading until the server closes it (4001), then resumes; the others'
    latency against the same load without the slow ones, and the server's peak RSS."""
    rows: list[SlowRow] = []
    server = BenchServer(variant, work, SLOW).start()
    try:
        for slow in (True, False):
            env = {
                **{"BENCH_RATE": str(SLOW_RATE), "BENCH_ROOMS": str(SLOW_ROOMS), "BENCH_MEMBERS": str(SLOW_MEMBERS)},
                **{"BENCH_TEXT_BYTES": str(SLOW_TEXT), "BENCH_CYCLES": "1"},
            }
            users = ["ChatMember", "SlowReader"] if slow else ["ChatMember"]
            count = SLOW_ROOMS * SLOW_MEMBERS + (SLOW_ROOMS if slow else 0)
            out = work / f"slow-{variant}-{slow}-{repeat}.json"
            limit = 90 if slow else profile.seconds + 2 + WARMUP
            run = locust(server, users, count, env, out, limit=limit)
            counts = run.counts
            sent = counts.get("sent", 0)
            row = SlowRow(
                variant=variant,
                slow_readers=SLOW_ROOMS if slow else 0,
                seconds=run.results.seconds,
                sent=sent,
                delivered=counts.get("delivered", 0),
                expected=sent * SLOW_MEMBERS,
                complete=complete(counts, SLOW_ROOMS * SLOW_MEMBERS * SLOW_RATE, SLOW_MEMBERS),
                missing=counts.get("missing", 0),
                repeated_or_reordered=counts.get("repeated_or_reordered", 0),
                delivery_ms=run.percentiles("delivery", 50, 99),
                closed_after_s=run.latency("slow closed after").percentile(50) / 1000,
                slow_codes={
                    k.removeprefix("slow closed "): v for k, v in counts.items() if k.startswith("slow closed")
                },
                slow_resumed=counts.get("slow resumed", 0),
                failures=run.failures(),
                peak_rss_mb=run.server.peak_rss() / 2**20,
                repeat=repeat,
            )
            rows.append(row)
            say(
                f"  {variant:17} {'with' if slow else 'without'} slow readers: healthy p99"
                f" {row.delivery_ms['99']:7.2f} ms, missed {row.missing}, slow ones closed"
                f" {row.slow_codes or '-'}, resumed {row.slow_resumed}, failures {row.failures or 'none'},"
                f" peak RSS {row.peak_rss_mb:.0f} MB"
            )
    finally:
        server.stop()
    return rows


def idle(variant: str, profile: Profile, work: Path, repeat: int) -> list[IdleRow]:
    """Scenario 6: RSS per idle chat connection (a member that only answers pings), at each count, in rooms of
    ``IDLE_ROOM`` members."""
    rows: list[IdleRow] = []
    for count in profile.idle:
        server = BenchServer(variant, work).start()
        try:
            before = server.measure()
            before.finish()
            reached = Reached()
            out = work / f"idle-{variant}-{count}-{repeat}.json"
            run = locust(
                server,
                ["IdleMember"],
                count,
                {"BENCH_ROOMS": str(max(1, count // IDLE_ROOM))},
                out,
                limit=60 + 2 * count / IDLE_SPAWN_RATE,
                spawn_rate=IDLE_SPAWN_RATE,
                until=functools.partial(wait_for_connections, server, count, reached),
            )
        finally:
            server.stop()
        rss_before = before.rss() / 2**20
        row = IdleRow(
            variant=variant,
            connections=count,
            connected=reached.connected,
            all_connected=reached.connected >= count,
            rss_before_mb=rss_before,
            rss_mb=reached.rss_mb,
            kb_per_connection=(reached.rss_mb - rss_before) * 1024 / max(reached.connected, 1),
            connect_ms=run.percentiles("connect", 50, 99),
            failures=run.failures() | ({"metrics unanswered": reached.unanswered} if reached.unanswered else {}),
            repeat=repeat,
        )
        rows.append(row)
        say(
            f"  {variant:17} {count:5} idle connections{'' if row.all_connected else ' (not all connected)'}:"
            f" RSS {rss_before:.0f} → {row.rss_mb:.0f} MB, {row.kb_per_connection:.1f} KB each,"
            f" failures {row.failures or 'none'}"
        )
    return rows


# Scenario 7: Locust's users, each against the fastest server it can talk to, from a starting rate (messages per
# second per user) up to the load that keeps Locust's core busy (locust_ceiling.py).
LOCUST_CEILINGS = [
    ("reference", "BareMember", 20.0),
    ("reference", "EchoClient", 100.0),
    ("websockets", "ChatMember", 8.0),
]


def locust_ceiling(variant: str, profile: Profile, work: Path, repeat: int) -> list[CeilingRow]:
    """Scenario 7: what one Locust process checks per second on its core, for each user of ``LOCUST_CEILINGS``
    that runs against ``variant``; where the server is busy first, Locust's ceiling is extrapolated."""
    rows: list[CeilingRow] = []
    server = BenchServer(variant, work).start()
    try:
        for name, user, rate in LOCUST_CEILINGS:
            if name != variant:
                continue
            steps = ceiling(server, user, rate=rate, seconds=profile.ceiling_seconds, out_dir=work)
            rows.append(CeilingRow(variant=variant, steps=steps, repeat=repeat))
            say(f"  {variant:17} {steps[-1].line()}")
    finally:
        server.stop()
    return rows


@dataclass
class Reached:
    """What scenario 6's server reached: the connections, how often ``/metrics`` went unanswered, its RSS."""

    connected: float = 0.0
    unanswered: int = 0
    rss_mb: float = 0.0


def wait_for_connections(server: BenchServer, count: int, reached: Reached) -> None:
    """Until ``chat_connections`` is ``count`` (or a deadline): then the connections and the server's RSS in
    ``reached``. A server too busy connecting to answer ``/metrics`` in time is asked again."""
    deadline = time.monotonic() + 30 + 2 * count / IDLE_SPAWN_RATE
    while reached.connected < count and time.monotonic() < deadline:
        try:
            reached.connected = chat_connections(server.urls)
        except OSError:  # urllib's URLError and timeouts
            reached.unanswered += 1
        time.sleep(0.2)  # poll interval
    reached.rss_mb = server.measure().finish().peak_rss_mb


def machine() -> Machine:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    packages = [
        "fastapi",
        "uvicorn",
        "django",
        "channels",
        "channels-redis",
        "daphne",
        "websockets",
        "redis",
        "locust",
        "picows",
        "uvloop",
        "gevent",
    ]
    return Machine(
        cpu=cpu,
        cores=os.cpu_count(),
        server_cores=sorted(server_cores()),
        generator_cores=sorted(generator_cores()),
        python=platform.python_version(),
        kernel=platform.release(),
        versions={name: version(name) for name in packages},
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("profile", choices=PROFILES)
    parser.add_argument("--only", default="", help="comma-separated servers or chapters (default: all)")
    parser.add_argument("--scenarios", default="1,2,3,4,5,6,7", help="comma-separated (default: all)")
    parser.add_argument("--merge", action="store_true", help="keep the other scenarios' results already in --out")
    parser.add_argument("--out", type=Path, default=None, help="results folder (default: results/<date>[-quick])")
    args = parser.parse_args()
    profile = PROFILES[args.profile]
    scenarios = set(args.scenarios.split(","))
    everything = list(dict.fromkeys([*(name for name, _ in CAPACITY_ROWS + LEDGER_ROWS), *variants()]))
    chosen = [v for v in everything if not args.only or chapter(v) in args.only.split(",") or v in args.only.split(",")]
    day = datetime.date.today().isoformat()
    out: Path = args.out or BENCH_DIR / "results" / (day if args.profile == "full" else f"{day}-quick")
    out.mkdir(parents=True, exist_ok=True)
    gated = {name: gate(name) for name in dict.fromkeys(map(chapter, chosen))}
    passed = [v for v in chosen if gated[chapter(v)]]
    chats = [v for v in passed if v in variants() and v != "reference"]
    cap = {name for name, _ in CAPACITY_ROWS}
    led = {name for name, _ in LEDGER_ROWS}
    results = Results(
        profile=args.profile,
        settings=asdict(profile),
        chat_settings=SETTINGS,
        scenario_settings={
            "disconnects": HEARTBEAT,
            "idle": {"members_per_room": IDLE_ROOM},
            "slow_consumers": {
                **SLOW,
                **{"rooms": SLOW_ROOMS, "members": SLOW_MEMBERS, "rate": SLOW_RATE, "text_bytes": SLOW_TEXT},
            },
        },
        machine=machine(),
        gated_out=sorted(set(chosen) - set(passed)),
        runs=[Invocation(started=datetime.datetime.now().isoformat(timespec="seconds"), scenarios=sorted(scenarios))],
    )
    # Each scenario's section of results.json, named after the scenario's function.
    sections = {"1": "capacity", "2": "ledger", "3": "disconnects", "4": "churn", "5": "slow_consumers", "6": "idle"}
    sections["7"] = "locust_ceiling"
    if args.merge and (out / "results.json").exists():  # another run's scenarios, kept as they were
        earlier = Results.load(out / "results.json")
        kept = {section for number, section in sections.items() if number not in scenarios}
        results = replace(
            results,
            **{section: getattr(earlier, section) for section in kept},
            errors=[error for error in earlier.errors if error.scenario in kept],
            runs=[*earlier.runs, *results.runs],
        )
    with tempfile.TemporaryDirectory(prefix="bench-") as folder:
        work = Path(folder)
        for repeat in range(profile.repeats):  # interleaved: every server once, then again
            note = f", run {repeat + 1} of {profile.repeats}" if profile.repeats > 1 else ""
            steps: list[tuple[str, str, Scenario, list[str]]] = [
                ("1", "Scenario 1, capacity", capacity, [v for v in passed if v in cap]),
                ("2", "Scenario 2, chapter 2's cost ledger", ledger, [v for v in passed if v in led]),
                ("3", "Scenario 3, disconnect handling", disconnects, chats),
                ("4", "Scenario 4, churn", churn, chats),
                ("5", "Scenario 5, slow consumers", slow_consumers, chats),
                ("6", "Scenario 6, idle connections", idle, chats if repeat == 0 else []),  # once: see README
                (
                    "7",
                    "Scenario 7, Locust's own ceiling",
                    locust_ceiling,
                    [v for v in ("reference", "websockets") if v in passed] if repeat == 0 else [],
                ),  # once
            ]
            for number, title, scenario, servers in steps:
                if number not in scenarios or not servers:
                    continue
                say(title + (" (once)" if number in ("6", "7") else note))
                key = scenario.__name__
                for variant in servers:
                    logs = log_sizes(work)
                    try:
                        rows = scenario(variant, profile, work, repeat)
                    except Exception as exc:  # one server's failure doesn't end the others' runs
                        say(f"  {variant}: {key} failed: {exc!r}")
                        results.errors.append(ScenarioError(scenario=key, variant=variant, error=repr(exc)))
                        rows = []
                    for error in tracebacks(work, logs, out / "server-logs" / f"{key}-{variant}-{repeat + 1}"):
                        say(f"  {variant}: {error}")
                        results.errors.append(ScenarioError(scenario=key, variant=variant, error=error))
                    getattr(results, key).extend(rows)
            results.save(out / "results.json")  # after each round, in case
    write_report(Results.load(out / "results.json"), out)  # what `python benchmarks/report.py <folder>` makes
    say(f"Results: {out / 'results.json'}; report: {out / 'REPORT.md'}")
    return 0


def log_sizes(work: Path) -> dict[Path, int]:
    """The size of every server log in ``work`` (the servers, their Redis)."""
    return {log: log.stat().st_size for log in work.glob("*.log")}


def tracebacks(work: Path, before: dict[Path, int], keep: Path) -> list[str]:
    """A server's traceback while a scenario ran is a bug, however good the figures: one error per log that has
    one, naming its last exception; the part of the log the scenario wrote is kept in ``keep`` (the working
    folder goes at the end of the run)."""
    errors = []
    for log, size in log_sizes(work).items():
        if size == before.get(log, 0):
            continue
        with log.open("rb") as file:
            file.seek(before.get(log, 0))
            written = file.read(size - before.get(log, 0)).decode(errors="replace")
        if "Traceback" in written:
            keep.mkdir(parents=True, exist_ok=True)
            (keep / log.name).write_text(written)
            lines = written[written.rindex("Traceback") :].splitlines()[1:]
            last = next((line for line in lines if line and not line[0].isspace()), "?")
            errors.append(f"traceback in {log.name} (kept in {keep}): {last}")
    return errors


if __name__ == "__main__":
    sys.exit(main())
