"""Locust's entry point for the benchmarks: ``locust -f benchmarks/locustfile.py ChatMember --host …``.

``make bench-ui IMPL=…`` opens Locust's web UI on it. With ``BENCH_OUT=<file>``, the process writes what its
users measured (benchmarks/histogram.py's sub-millisecond latencies, and the counts of missing, repeated and
reordered messages) to that file as JSON when the test stops.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from locust import events

from users import (
    COUNTS,
    WARMUP,
    WINDOW,
    BareMember,
    ChatMember,
    Churner,
    EchoClient,
    IdleMember,
    Leaver,
    SlowReader,
    results,
)

__all__ = ["BareMember", "ChatMember", "Churner", "EchoClient", "IdleMember", "Leaver", "SlowReader"]


@events.spawning_complete.add_listener  # type: ignore[untyped-decorator]  # Locust's events are untyped
def start_measuring(**_: Any) -> None:
    WINDOW["from"] = time.time_ns() + int(WARMUP * 1e9)


@events.user_error.add_listener  # type: ignore[untyped-decorator]
def count_error(exception: Exception, **_: Any) -> None:
    """An exception that ended a task or a user's start: a failure of the run, counted with the others."""
    COUNTS[f"error {type(exception).__name__}"] += 1


@events.test_stop.add_listener  # type: ignore[untyped-decorator]
def write_results(**_: Any) -> None:
    WINDOW["to"] = time.time_ns()
    out = os.environ.get("BENCH_OUT")
    if out:
        Path(out).write_text(json.dumps(results().to_json()))
