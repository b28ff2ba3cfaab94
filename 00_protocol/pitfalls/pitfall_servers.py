"""The servers the pitfalls are shown on: the naive ones, the galleries and the chapters, started once."""

from __future__ import annotations

import sys
import threading
from collections.abc import Mapping
from pathlib import Path

from members import Target

from tests.harness import PortProcess, ServerProcess
from tests.implementations import IMPLEMENTATIONS, Implementation

HERE = Path(__file__).resolve().parent
PITFALLS = {
    1: "Broadcasting over a set while members leave",
    2: "A sequential `await send` loop",
    3: "A WSGI server",
    4: "Forgetting accept()",
    5: "Blocking the event loop",
    6: "Two processes, no shared channel layer",
    7: "No heartbeat",
    8: "No message size limit",
    9: "No authentication or Origin check at the handshake",
    10: "A naive reconnecting client",
}
# The naive servers (each chapter's naive.py, as the framework's docs write it) and the pitfall galleries here
# (the same code with one mistake per route): the command, and where a room is.
NAIVE = {
    "naive FastAPI": ("01_fastapi/naive.py", "/ws/{room}"),
    "naive Channels": ("02_channels/naive.py", "/ws/chat/{room}/"),
    "naive websockets": ("03_websockets/naive.py", "/ws/{room}"),
    "websockets, send loop": ("00_protocol/pitfalls/websockets_pitfalls.py", "/send-loop/{room}"),
}
GALLERIES = {
    "FastAPI": "00_protocol/pitfalls/fastapi_pitfalls.py",
    "Channels": "00_protocol/pitfalls/channels_pitfalls.py",
    "websockets": "00_protocol/pitfalls/websockets_pitfalls.py",
    "Django under WSGI": "00_protocol/pitfalls/wsgi.py",
}
CHAPTERS = {"chapter 1": "fastapi", "chapter 2": "channels", "chapter 3": "websockets"}
# The chapters with a heartbeat short enough to watch (SPEC.md §11), a small send queue (§13.4) and no rate
# limit in the way (§13.3). Everything else is the default.
SETTINGS = {
    "CHAT_HEARTBEAT_INTERVAL": "0.5",
    "CHAT_HEARTBEAT_TIMEOUT": "1.5",
    "CHAT_SEND_QUEUE": "16",
    "CHAT_RATE_LIMIT": "100000",
}


class Servers:
    """Every server of the pitfalls, started on first use (several at once, in threads) and stopped at the end."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: dict[str, ServerProcess] = {}
        self.lock = threading.Lock()

    def process(self, name: str, env: Mapping[str, str] | None = None) -> ServerProcess:
        """A process of one server, by name: a label of NAIVE, GALLERIES or CHAPTERS; not started yet."""
        if name in CHAPTERS:
            return ServerProcess(IMPLEMENTATIONS[CHAPTERS[name]], {**SETTINGS, **(env or {})}, self.log_dir)
        script = NAIVE[name][0] if name in NAIVE else GALLERIES[name]
        impl = Implementation(name.replace(" ", "-").replace(",", ""), (sys.executable, script))
        return PortProcess(impl, dict(env or {}), self.log_dir)

    def get(self, *names: str) -> list[ServerProcess]:
        """These servers, running: the ones not started yet are started side by side."""
        with self.lock:
            missing = [name for name in names if name not in self.started]
            self.started.update(zip(missing, start_all([self.process(name) for name in missing]), strict=True))
            return [self.started[name] for name in names]

    def target(self, label: str, server: ServerProcess | None = None) -> Target:
        """A naive server's room, or a chapter's: the running one, or ``server``, another process of it."""
        if server is None:
            (server,) = self.get(label)
        return Target(label, server, NAIVE[label][1] if label in NAIVE else None)

    def stop(self) -> None:
        """Stop every server started."""
        stop_all(list(self.started.values()))


def start_all(processes: list[ServerProcess]) -> list[ServerProcess]:
    """Start them side by side (each start waits for its server to answer); stop them all if one fails."""
    errors: list[BaseException] = []

    def start(process: ServerProcess) -> None:
        try:
            process.start()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(process,)) for process in processes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        stop_all(processes)
        raise errors[0]
    return processes


def stop_all(processes: list[ServerProcess]) -> None:
    """Stop them, one after the other."""
    for process in processes:
        process.stop()
