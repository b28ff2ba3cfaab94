"""An implementation as several processes on one throwaway redis-server (SPEC.md §17): for the conformance
suite (``Cluster``), and for ``make run-cluster`` (``python -m tests.cluster IMPL WORKERS FIRST_PORT``)."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from tests.harness import REPO, SECRET, Server, ServerProcess
from tests.implementations import IMPLEMENTATIONS, Implementation
from tests.redis_server import RedisServer

SUFFIX = "+redis"  # "fastapi+redis": chapter 1 as a cluster


class Cluster(Server):
    """``processes`` processes of ``impl`` sharing a redis-server of their own. Clients connect to them in
    turn (``for_client``); HTTP goes to the first; metrics add up over all of them."""

    def __init__(
        self, impl: Implementation, env: Mapping[str, str], log_dir: Path, processes: int = 2, persistent: bool = False
    ) -> None:
        self.redis = RedisServer(log_dir, persistent=persistent)
        env = {**env, "CHAT_REDIS_URL": self.redis.url}
        self.members = [ServerProcess(impl, env, log_dir) for _ in range(processes)]
        super().__init__(impl.name + SUFFIX, self.members[0].url, SECRET, env)
        self.turn = itertools.cycle(self.members)

    @property
    def urls(self) -> list[str]:
        return [member.url for member in self.members]

    def for_client(self) -> Server:
        return next(self.turn)

    def log(self, start: int = 0) -> str:
        return "\n".join(f"--- {member.url}\n{member.log()}" for member in self.members)

    def log_size(self) -> int:
        return 0  # each member's log is reported on its own (conftest.make_server)

    def start(self) -> Cluster:
        self.redis.start()
        try:
            for member in self.members:
                member.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        try:
            for member in self.members:
                member.stop()
        finally:
            self.redis.kill()


def run(impl: Implementation, workers: int, first_port: int) -> int:
    """``make run-cluster``: a redis-server of its own and ``workers`` processes of ``impl`` on consecutive
    ports, with the caller's CHAT_* settings; until Ctrl+C, then everything is stopped."""
    try:
        redis = RedisServer(Path(tempfile.mkdtemp(prefix="chat-cluster-")))
    except RuntimeError as exc:  # no redis-server: the message says how to install it
        raise SystemExit(str(exc)) from None
    redis.start()
    env = {**os.environ, "CHAT_REDIS_URL": redis.url}
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for port in range(first_port, first_port + workers):
            processes.append(subprocess.Popen(impl.command, cwd=REPO, env={**env, "CHAT_PORT": str(port)}))
        ports = ", ".join(f"http://127.0.0.1:{port}" for port in range(first_port, first_port + workers))
        print(f"{workers} processes of {impl.name}: {ports}, sharing {redis.url}. Ctrl+C stops them.", flush=True)
        stop = {signal.SIGINT, signal.SIGTERM}
        signal.pthread_sigmask(signal.SIG_BLOCK, stop)  # now, not before: the processes would inherit the mask
        while all(process.poll() is None for process in processes):
            if signal.sigtimedwait(stop, 1.0) is not None:  # a signal, or 1 s to look at the processes again
                break
        return 0 if all(process.poll() is None for process in processes) else 1
    finally:
        try:
            for process in processes:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            for process in processes:
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
        finally:
            redis.kill()


if __name__ == "__main__":
    impl_name, workers, first_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    if impl_name not in IMPLEMENTATIONS:
        raise SystemExit(f"IMPL must be one of {', '.join(IMPLEMENTATIONS)}, got {impl_name!r}.")
    raise SystemExit(run(IMPLEMENTATIONS[impl_name], workers, first_port))
