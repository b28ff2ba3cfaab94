"""``chat_connections`` from a server's ``GET /metrics``, for the users (under gevent) and the runner alike."""

from __future__ import annotations

import urllib.request


def gauge(hosts: list[str]) -> float:
    """``chat_connections`` (SPEC.md §2), added up over the server's processes."""
    total = 0.0
    for host in hosts:
        with urllib.request.urlopen(f"{host}/metrics", timeout=10) as answer:
            for line in answer.read().decode().splitlines():
                if line.startswith("chat_connections "):
                    total += float(line.split()[1])
    return total
