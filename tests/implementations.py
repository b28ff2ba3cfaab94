"""The implementations the conformance suite runs against: adding a chapter is one entry here."""

from __future__ import annotations

import sys
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Implementation:
    name: str
    # Run from the repository root with CHAT_HOST, CHAT_PORT and the test's CHAT_* variables in the environment.
    command: tuple[str, ...]


IMPLEMENTATIONS = {
    impl.name: impl
    for impl in [
        Implementation("fastapi", (sys.executable, "01_fastapi/server.py")),
        Implementation("channels", (sys.executable, "02_channels/server.py")),
        Implementation("websockets", (sys.executable, "03_websockets/server.py")),
    ]
}
