"""A throwaway redis-server for the tests: on a free loopback port, without persistence, stopped afterwards."""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path

from tests.harness import free_port, wait_started
from tests.machine import REDIS, missing_message

START_TIMEOUT = 10.0


class RedisServer:
    """``redis-server`` on 127.0.0.1 and a free port (never the default 6379); with no data on disk unless
    ``persistent``."""

    def __init__(self, log_dir: Path, *, persistent: bool = False) -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            raise RuntimeError(missing_message([REDIS]))
        self.executable = executable
        self.port = free_port()
        self.log_path = log_dir / f"redis-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.data_dir = log_dir / f"redis-{self.port}" if persistent else None  # an append-only file, fsync'ed

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start it (again, on the same port, after ``kill``), and wait until it answers PING."""
        command = [self.executable, "--bind", "127.0.0.1", "--port", str(self.port), "--save", ""]
        if self.data_dir is None:
            command += ["--appendonly", "no"]
        else:  # a restart finds every write that was acknowledged
            self.data_dir.mkdir(exist_ok=True)
            command += ["--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.data_dir)]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        if not wait_started(self.process, self.ping, START_TIMEOUT):
            self.kill()
            raise RuntimeError(f"redis-server did not start on port {self.port}:\n{self.log_path.read_text()}")

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        """Stop it at once (SIGKILL): the data is gone, as with a crash of a Redis without persistence."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
