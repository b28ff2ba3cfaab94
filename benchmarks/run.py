"""``make bench`` and ``make bench-quick``: the scenarios against every server, results in benchmarks/results/."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

from histogram import Histogram
from report import sustained, write_report
from servers import BENCH_DIR, SETTINGS, BenchServer, generator_cores, locust_command, server_cores, variants
from tests.harness import REPO

WARMUP = 1.0  # seconds, after every user is spawned, before measuring (users.py's BENCH_WARMUP)


@dataclass(frozen=True)
class Profile:
    seconds: float  # of each Locust run, after its users have connected
    repeats: int  # of every measurement, interleaved across servers
    rates: tuple[float, ...]  # messages per second per member, stepped up
    rooms: int
    members: int  # per room


PROFILES = {
    "quick": Profile(seconds=4, repeats=1, rates=(1, 2, 4), rooms=4, members=10),
    "full": Profile(seconds=20, repeats=3, rates=(1, 2, 4, 8, 16, 32), rooms=10, members=20),
}


def gate(name: str) -> bool:
    """TechEmpower's verify step: a server is benchmarked only if a quick conformance run against it passes."""
    if name == "reference":
        return True  # not the chat protocol: nothing to verify but SPEC.md §18, which the smoke test checks
    command = [sys.executable, "-m", "pytest", "tests/test_07_messages.py", f"--impl={name}", "-q", "-x"]
    finished = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    if finished.returncode != 0:
        print(f"  {name}: the conformance smoke run failed; not benchmarked.\n{finished.stdout[-2000:]}")
    return finished.returncode == 0


def run_locust(server: BenchServer, user: str, profile: Profile, rate: float, out: Path) -> dict[str, Any]:
    """One Locust run, on the generator's cores: what its users measured, and what the server used."""
    users = profile.rooms * profile.members
    environ = {
        **os.environ,
        "BENCH_OUT": str(out),
        "BENCH_RATE": str(rate),
        "BENCH_ROOMS": str(profile.rooms),
        "BENCH_HOSTS": ",".join(server.urls),
        "BENCH_WARMUP": str(WARMUP),
    }
    spawn = max(1.0, users / 100) + WARMUP  # seconds to connect everyone, at 100 users per second, and warm up
    command = locust_command(user, "--headless", "--only-summary")
    command += ["-u", str(users), "-r", "100", "-t", f"{profile.seconds + spawn:.0f}s", "--host", server.urls[0]]
    command += ["--stop-timeout", "5"]
    out.unlink(missing_ok=True)
    usage = server.measure()
    finished = subprocess.run(
        command, env=environ, cwd=REPO, capture_output=True, text=True, timeout=profile.seconds + spawn + 120
    )
    measured = usage.finish()
    results: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {"latency": {}, "counts": {}}
    counts = results["counts"]
    if finished.returncode != 0 and not out.exists():
        counts["error locust"] = 1
    # Every message sent in the window goes to each member of its room; those still on their way when Locust
    # stopped (half a second's worth) may be missing.
    members = profile.members
    expected = counts.get("sent", 0) * members
    allowance = users * rate * 0.5 * members + 0.01 * expected
    delivery = Histogram.from_json(results["latency"].get("delivery", {}))
    ack = Histogram.from_json(results["latency"].get("ack", {}))
    return {
        "variant": server.variant,
        "user": user,
        "rate": rate,
        "users": users,
        "offered_per_s": users * rate,  # messages sent per second, if the generator keeps up
        "sent": counts.get("sent", 0),
        "delivered": counts.get("delivered", 0),
        "expected": expected,
        "complete": counts.get("delivered", 0) >= expected - allowance and counts.get("sent", 0) > 0,
        # Locust's own warning that its process is saturated: the numbers measure the generator.
        "generator_saturated": "CPU usage above" in finished.stderr + finished.stdout,
        "seconds": results.get("seconds", 0.0),  # measured: after every user connected, and a warm-up
        "deliveries_per_s": counts.get("delivered", 0) / max(results.get("seconds", 0.0), 1e-9),
        "missing": counts.get("missing", 0),
        "repeated_or_reordered": counts.get("repeated_or_reordered", 0),
        "failures": {k: v for k, v in counts.items() if k.startswith(("closed", "error", "send_after"))},
        "delivery_ms": {str(p): delivery.percentile(p) for p in (50, 95, 99)},
        "ack_ms": {str(p): ack.percentile(p) for p in (50, 95, 99)},
        **measured,
    }


def fanout(variant: str, profile: Profile, work: Path, repeat: int) -> list[dict[str, Any]]:
    """Scenarios 1 and 2: rooms x members, each sending at a fixed rate, stepped up until it is not sustained;
    the chat protocol (ChatMember) and the framework's bare room (BareMember) at the same loads."""
    rows: list[dict[str, Any]] = []
    # A bare room (§18) lives in one process, except chapter 2's (a channel-layer group): on two processes,
    # chapters 1 and 3 would give each member only its own process's half of the room.
    if variant == "reference":
        users = ["BareMember"]
    elif variant in ("fastapi+redis", "websockets+redis"):
        users = ["ChatMember"]
    else:
        users = ["ChatMember", "BareMember"]
    server = BenchServer(variant, work).start()
    try:
        for user in users:
            for rate in profile.rates:
                row = run_locust(server, user, profile, rate, work / f"{variant}-{user}-{rate}-{repeat}.json")
                rows.append(row)
                print(
                    f"  {variant:20} {user:11} {rate:>5g}/s each: {row['deliveries_per_s']:9.0f} deliveries/s,"
                    f" p99 {row['delivery_ms']['99']:7.2f} ms, {row['delivered']} of {row['expected']} delivered"
                    f"{'' if sustained(row) else ' (not sustained)'}",
                    flush=True,
                )
                if not sustained(row):
                    break
    finally:
        server.stop()
    return rows


def machine() -> dict[str, Any]:
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
        "gevent",
    ]
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "server_cores": sorted(server_cores()),
        "generator_cores": sorted(generator_cores()),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "versions": {name: version(name) for name in packages},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("profile", choices=PROFILES)
    parser.add_argument("--only", default="", help="comma-separated variants (default: all)")
    parser.add_argument("--out", type=Path, default=None, help="results folder (default: results/<date>[-quick])")
    args = parser.parse_args()
    profile = PROFILES[args.profile]
    chosen = [v for v in variants() if not args.only or v in args.only.split(",")]
    day = datetime.date.today().isoformat()
    out: Path = args.out or BENCH_DIR / "results" / (day if args.profile == "full" else f"{day}-quick")
    out.mkdir(parents=True, exist_ok=True)
    print(f"Gate: a conformance smoke run against each chapter ({', '.join(chosen)})", flush=True)
    passed = [v for v in chosen if gate(v.removesuffix("+redis"))]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-") as work:
        for repeat in range(profile.repeats):  # interleaved: every server once, then again
            print(f"Fan-out, run {repeat + 1} of {profile.repeats}", flush=True)
            for variant in passed:
                rows += [{**row, "repeat": repeat} for row in fanout(variant, profile, Path(work), repeat)]
    results = {
        "profile": args.profile,
        "settings": asdict(profile),
        "chat_settings": SETTINGS,
        "machine": machine(),
        "gated_out": sorted(set(chosen) - set(passed)),
        "fanout": rows,
    }
    (out / "results.json").write_text(json.dumps(results, indent=1))
    write_report(results, out)
    print(f"Results: {out / 'results.json'}; report: {out / 'REPORT.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
