"""Start an implementation as a real server process on a free port, and stop it."""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import httpx2

from tests.implementations import Implementation

REPO = Path(__file__).resolve().parent.parent
SECRET = "conformance-suite-secret-0123456789abcdef"  # every server the suite starts signs tokens with this
FAST = {"CHAT_RATE_LIMIT": "100000"}  # settings that move the rate limit (§13.3) out of a test's way
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


def wait_started(process: subprocess.Popen[bytes], ready: Callable[[], bool], timeout: float) -> bool:
    """Poll ``ready`` until it says yes (True), or until ``process`` exits or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while not ready():
        if process.poll() is not None or time.monotonic() > deadline:
            return False
        time.sleep(0.02)  # ok-sleep: polling a process that is starting, bounded by the deadline
    return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """A chat server under test, reachable at ``url``; ``log()`` is what it printed."""

    def __init__(self, name: str, url: str, secret: str | None, env: Mapping[str, str]) -> None:
        self.name = name
        self.url = url.rstrip("/")
        self.ws_url = "ws" + self.url.removeprefix("http")
        self.secret = secret
        self.env = dict(env)
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def urls(self) -> list[str]:
        """Every process serving this chat server (tests/cluster.py has several)."""
        return [self.url]

    def for_client(self) -> Server:
        """The process the next client connects to."""
        return self

    def setting(self, name: str, default: float) -> float:
        """A CHAT_* value this server was started with (the SPEC's default when unset)."""
        return float(self.env.get(name, default))

    def log(self, start: int = 0) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_bytes()[start:].decode(errors="replace")

    def log_size(self) -> int:
        return self.log_path.stat().st_size if self.log_path is not None and self.log_path.exists() else 0

    def token(self, user: str) -> str:
        response = httpx2.get(f"{self.url}/api/token", params={"user": user}, timeout=5)
        response.raise_for_status()
        return str(response.json()["token"])

    async def atoken(self, user: str) -> str:
        async with httpx2.AsyncClient() as http:
            response = await http.get(f"{self.url}/api/token", params={"user": user}, timeout=5)
        response.raise_for_status()
        return str(response.json()["token"])

    def healthy(self) -> bool:
        try:
            return httpx2.get(f"{self.url}/healthz", timeout=2).status_code == 200
        except httpx2.HTTPError:
            return False


class ServerProcess(Server):
    """An implementation started by the suite; stopped with SIGTERM (then SIGKILL) by ``stop()``."""

    def __init__(
        self, impl: Implementation, env: Mapping[str, str], log_dir: Path, descriptors: tuple[int, int] | None = None
    ) -> None:
        port = free_port()
        super().__init__(impl.name, f"http://127.0.0.1:{port}", SECRET, env)
        self.impl = impl
        self.log_path = log_dir / f"{impl.name}-{port}.log"
        self.descriptors = descriptors  # the process's (soft, hard) limit on open descriptors, if not inherited

    def start(self) -> ServerProcess:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("CHAT_")}
        environ.update({"CHAT_HOST": "127.0.0.1", "CHAT_PORT": str(self.port), "CHAT_SECRET": SECRET})
        environ.update(self.env)
        environ["PYTHONUNBUFFERED"] = "1"
        assert self.log_path is not None
        with self.log_path.open("ab") as log:  # a restart (after kill) adds to the same log
            self.process = subprocess.Popen(
                self.impl.command,
                cwd=REPO,
                env=environ,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=self.limit_descriptors if self.descriptors else None,
            )
        if not wait_started(self.process, self.healthy, START_TIMEOUT):
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode} on start:\n{self.log()}")
            self.stop()
            raise RuntimeError(f"{self.name} did not answer /healthz within {START_TIMEOUT} s:\n{self.log()}")
        return self

    def limit_descriptors(self) -> None:
        assert self.descriptors is not None
        resource.setrlimit(resource.RLIMIT_NOFILE, self.descriptors)

    def signal(self, sig: int) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def wait(self, timeout: float) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def kill(self) -> None:
        """Kill it (SIGKILL, as a crash would): its connections end without a close frame. ``start()`` again
        brings it back on the same port."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(STOP_TIMEOUT)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(STOP_TIMEOUT)


class PortProcess(ServerProcess):
    """A server that answers no HTTP (/healthz), such as a naive one (a chapter's naive.py): it is up once its
    port accepts connections."""

    def healthy(self) -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", self.port)) == 0
