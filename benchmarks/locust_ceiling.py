"""Locust's own ceiling: how many deliveries per second one Locust process checks on its one core, per user."""

from __future__ import annotations

import argparse
import math
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from histogram import Histogram
from locust_run import WARMUP, locust
from servers import BenchServer

SPAWN_RATE = 200  # users per second
BUSY = 0.9  # Locust's share of its core from which a step measures its ceiling

# How to read it. Locust's CPU per delivery falls as the load rises (its event loop finds more sockets ready per
# wake-up, and a recv() more frames), so the ceiling is measured where Locust is busy, not extrapolated from a
# light load. Past it, Locust still checks more per second, but late: the p99 grows with what waits to be read,
# and measures Locust. Against a chapter, the server (on a core of its own too) may be busy first: ``bound``
# says who was, and ``ceiling`` extrapolates Locust's from its cost at that load.
#
#   python benchmarks/locust_ceiling.py reference BareMember EchoClient --rate 16
#   python benchmarks/locust_ceiling.py fastapi ChatMember --rate 8


@dataclass(frozen=True)
class Step:
    """One Locust run at one load: what it delivered, and what that cost Locust's process."""

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
    failures: dict[str, int] = field(default_factory=dict)  # missing, repeated, errors, closed connections

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

    def summary(self) -> dict[str, Any]:
        """As JSON, with the numbers derived from the measurements."""
        derived = ("deliveries_per_s", "load", "server_load", "us_per_delivery", "ceiling", "kept_up", "bound")
        return {**asdict(self), **{name: getattr(self, name) for name in derived}}

    def line(self) -> str:
        return (
            f"{self.user:<11} {self.users} users x {self.rate:g}/s: {self.deliveries_per_s:9,.0f} deliveries/s,"
            f" Locust at {self.load:4.0%} (server {self.server_load:4.0%}), {self.us_per_delivery:5.1f} µs per delivery"
            f" (ceiling {self.ceiling:8,.0f}/s), p99 {self.p99_ms:.1f} ms{'' if self.kept_up else ', fell behind'}"
            f"{f', {self.failures}' if self.failures else ''}"
        )


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
) -> Step:
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
    results = run.results
    start, end = run.window
    counts = run.counts
    failing = ("error", "closed", "send_after_close", "missing", "repeated_or_reordered")
    return Step(
        user=user,
        users=users,
        rate=rate,
        fanout=1 if user == "EchoClient" else members,
        seconds=results["seconds"],
        sent=counts.get("sent", 0),
        delivered=counts.get("delivered", 0),
        cpu_seconds=run.generator.cpu_between(start, end),
        server_cpu_seconds=run.server_cpu(),
        p99_ms=Histogram.from_json(results["latency"].get("delivery", {})).percentile(99),
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
) -> list[Step]:
    """Steps from ``rate`` up to the load at which Locust is busy (``BUSY`` of its core or more): each next rate
    is the one the last step's cost says would take 95 % of the core. Stops there, once the server is busy or
    fell behind, or after ``tries`` steps. The last step's ``deliveries_per_s`` is Locust's ceiling if its
    ``bound`` is "Locust"; if it is "server", its ``ceiling`` extrapolates Locust's."""
    steps: list[Step] = []
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
