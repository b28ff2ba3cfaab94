"""Locust's own ceiling: how many deliveries per second one Locust process checks on its one core, per user."""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

from locust_run import WARMUP, locust
from rows import CeilingStep
from servers import BenchServer

SPAWN_RATE = 200  # users per second

# How to read it. Locust's CPU per delivery falls as the load rises (its event loop finds more sockets ready per
# wake-up, and a recv() more frames), so the ceiling is measured where Locust is busy, not extrapolated from a
# light load. Past it, Locust still checks more per second, but late: the p99 grows with what waits to be read,
# and measures Locust. Against a chapter, the server (on a core of its own too) may be busy first: a step's
# ``bound`` (rows.CeilingStep) says who was, and its ``ceiling`` extrapolates Locust's from its cost at that load.
#
#   python benchmarks/locust_ceiling.py reference BareMember EchoClient --rate 16
#   python benchmarks/locust_ceiling.py fastapi ChatMember --rate 8


def step(
    server: BenchServer,
    user: str,
    rate: float,
    *,
    rooms: int = 10,
    members: int = 20,
    seconds: float = 10.0,
    locustfile: Path | None = None,
    out_dir: Path | None = None,
) -> CeilingStep:
    """Locust (headless, on the generator's cores) runs ``rooms * members`` users of class ``user`` against
    ``server``, each sending ``rate`` messages per second, and measures for ``seconds`` after the warm-up.
    ``locustfile``: see ``locust_run.locust``; ``out_dir`` keeps the results and Locust's output."""
    users = rooms * members
    limit = math.ceil(users / SPAWN_RATE + WARMUP + seconds) + 1  # -t counts from the first spawn
    env = {"BENCH_ROOMS": str(rooms), "BENCH_RATE": f"{rate:g}"}
    with tempfile.TemporaryDirectory(prefix="locust-ceiling-") as scratch:
        out = (out_dir or Path(scratch)) / f"ceiling-{user}-{rate:g}.json"
        run = locust(server, [user], users, env, out, limit=limit, spawn_rate=SPAWN_RATE, locustfile=locustfile)
    if "error locust" in run.counts:
        raise RuntimeError(f"Locust wrote no results; its output ends with:\n{run.output[-1500:]}")
    start, end = run.window
    counts = run.counts
    failing = ("error", "closed", "send_after_close", "missing", "repeated_or_reordered")
    return CeilingStep(
        user=user,
        users=users,
        rate=rate,
        fanout=1 if user == "EchoClient" else members,
        seconds=run.results.seconds,
        sent=counts.get("sent", 0),
        delivered=counts.get("delivered", 0),
        cpu_seconds=run.generator.cpu_between(start, end),
        server_cpu_seconds=run.server_cpu(),
        p99_ms=run.latency("delivery").percentile(99),
        failures={name: n for name, n in counts.items() if name.startswith(failing) and n},
    )


def ceiling(
    server: BenchServer,
    user: str,
    *,
    rate: float = 1.0,
    rooms: int = 10,
    members: int = 20,
    seconds: float = 10.0,
    tries: int = 5,
    locustfile: Path | None = None,
    out_dir: Path | None = None,
) -> list[CeilingStep]:
    """Steps from ``rate`` up to the load at which Locust is busy (rows.BUSY of its core or more): each next rate
    is the one the last step's cost says would take 95 % of the core. Stops there, once the server is busy or
    fell behind, or after ``tries`` steps. The last step's ``deliveries_per_s`` is Locust's ceiling if its
    ``bound`` is "Locust"; if it is "server", its ``ceiling`` extrapolates Locust's."""
    steps: list[CeilingStep] = []
    for _ in range(tries):
        measured = step(
            server, user, rate, rooms=rooms, members=members, seconds=seconds, locustfile=locustfile, out_dir=out_dir
        )
        steps.append(measured)
        if measured.bound or not measured.kept_up:
            break
        rate = round(rate * min(8.0, 0.95 / max(measured.load, 0.01)), 1)
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("server", help="a variant from servers.variants(): reference, websockets, fastapi, …")
    parser.add_argument("users", nargs="+", help="Locust user classes: BareMember, EchoClient, ChatMember")
    parser.add_argument("--rate", type=float, default=1.0, help="messages per second per user to start from")
    parser.add_argument("--rooms", type=int, default=10)
    parser.add_argument("--members", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10.0, help="measured, per step")
    parser.add_argument("--tries", type=int, default=5)
    parser.add_argument("--locustfile", type=Path, help="another locustfile.py (with its users.py) to compare")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="locust-ceiling-") as logs:
        server = BenchServer(args.server, Path(logs)).start()
        try:
            for user in args.users:
                for measured in ceiling(
                    server,
                    user,
                    rate=args.rate,
                    rooms=args.rooms,
                    members=args.members,
                    seconds=args.seconds,
                    tries=args.tries,
                    locustfile=args.locustfile,
                ):
                    print(measured.line(), flush=True)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
