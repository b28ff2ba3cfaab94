"""A quick run of the benchmark code (`make test`): Locust's users against a chapter and the reference server."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import REPO, ServerProcess, free_port
from tests.implementations import IMPLEMENTATIONS

BENCH_DIR = Path(__file__).resolve().parent
LOCUST = Path(sys.executable).with_name("locust")
SETTINGS = {"CHAT_BENCH_ENDPOINTS": "1", "CHAT_RATE_LIMIT": "1000", "CHAT_LOG_LEVEL": "warning"}

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def chapter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(IMPLEMENTATIONS["websockets"], SETTINGS, tmp_path_factory.mktemp("logs")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def reference() -> Iterator[str]:
    port = free_port()
    environ = dict(os.environ, CHAT_PORT=str(port))
    command = [sys.executable, str(BENCH_DIR / "reference_server.py")]
    process = subprocess.Popen(command, env=environ, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not listening(port):
        assert process.poll() is None and time.monotonic() < deadline, "the picows reference did not start"
        time.sleep(0.05)  # ok-sleep: polling a process that is starting, bounded by the deadline
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(10)


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def run_locust(user: str, host: str, tmp_path: Path, users: int = 10) -> dict[str, Any]:
    """Locust, headless, for 3 s: what its users measured (benchmarks/locustfile.py's BENCH_OUT)."""
    out = tmp_path / f"{user}.json"
    environ = dict(os.environ, BENCH_OUT=str(out), BENCH_RATE="5", BENCH_ROOMS="2")
    command = [str(LOCUST), "-f", str(BENCH_DIR / "locustfile.py"), user, "--headless", "--only-summary"]
    command += ["-u", str(users), "-r", str(users), "-t", "3s", "--host", host, "--stop-timeout", "5"]
    finished = subprocess.run(command, env=environ, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.exists(), f"Locust wrote no results:\n{finished.stdout}\n{finished.stderr}"
    return dict(json.loads(out.read_text()))


@pytest.mark.parametrize("user", ["ChatMember", "BareMember"])
def test_members_count_every_message(chapter: ServerProcess, user: str, tmp_path: Path) -> None:
    """Members of 2 rooms send and receive; each message reaches both of its room's 5 members, none missing or
    repeated, and (for the chat) each one is acked."""
    results = run_locust(user, chapter.url, tmp_path)
    counts = results["counts"]
    assert counts["sent"] > 20
    assert counts.get("missing", 0) == 0 and counts.get("repeated_or_reordered", 0) == 0
    assert not [name for name in counts if name.startswith(("closed", "error", "send_after"))], counts
    assert sum(results["latency"]["connect"].values()) == 10
    # Each message goes to the 5 members of its room; the ones sent as the test stopped may be on their way.
    assert 5 * counts["sent"] - 5 * 10 <= counts["delivered"] <= 5 * counts["sent"]
    if user == "ChatMember":
        assert counts["sent"] - 10 <= sum(results["latency"]["ack"].values()) <= counts["sent"]


def test_echo_against_the_reference(reference: str, tmp_path: Path) -> None:
    """The picows reference echoes every message of Locust's echo clients."""
    counts = run_locust("EchoClient", reference, tmp_path)["counts"]
    assert counts["sent"] > 20
    assert counts["sent"] - 10 <= counts["delivered"] <= counts["sent"]
    assert counts.get("missing", 0) == 0
