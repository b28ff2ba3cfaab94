"""Chapter 4: a proxy (HAProxy, or nginx) in front of N processes of one chapter on one Redis, over TLS."""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import signal
import ssl
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2
import trustme

from tests.harness import ServerProcess, free_port, wait_started
from tests.implementations import IMPLEMENTATIONS, Implementation
from tests.machine import HAPROXY, NGINX, Need, missing_message
from tests.redis_server import RedisServer

HERE = Path(__file__).resolve().parent
HAPROXY_CFG = HERE / "haproxy.cfg"
NGINX_CONF = HERE / "nginx.conf"
PROXIES: dict[str, Need] = {"haproxy": HAPROXY, "nginx": NGINX}
HOST = "127.0.0.1"
# Timeouts
START_TIMEOUT = 10.0  # for the proxy to answer /healthz through TLS
STOP_TIMEOUT = 5.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Deployment:
    """Redis, ``workers`` processes of ``impl`` on it, and ``proxy`` in front of them on ``port`` (a free one if 0),
    with a certificate made for the run by a certificate authority made for the run (``ca_file``, which clients
    trust). Everything is on 127.0.0.1 and stops with ``stop()``."""

    def __init__(
        self, impl: Implementation, workers: int, run_dir: Path, *, port: int = 0, proxy: str = "haproxy"
    ) -> None:
        self.impl, self.run_dir, self.proxy = impl, run_dir, proxy
        self.port = port or free_port()
        self.url = f"https://{HOST}:{self.port}"
        self.origin = self.url  # the page's origin: the proxy's, which the processes must allow (SPEC.md §4)
        self.ca_file = run_dir / "ca.pem"
        self.pem = run_dir / "chat.pem"  # HAProxy's: the certificate, its chain and its key, in one file
        self.cert, self.key = run_dir / "chat.crt", run_dir / "chat.key"  # nginx's: the same, in two files
        self.redis = RedisServer(run_dir)
        self.secret = os.environ.get("CHAT_SECRET") or secrets.token_hex(32)  # every process signs with it
        env = {
            "CHAT_REDIS_URL": self.redis.url,
            "CHAT_SECRET": self.secret,
            "CHAT_ALLOWED_ORIGINS": f"{self.url},https://localhost:{self.port}",
            "CHAT_TRUSTED_PROXIES": HOST,  # the proxy's address: its X-Forwarded-For names the client (SPEC §16.1)
        }
        self.workers = [ServerProcess(impl, env, run_dir) for _ in range(workers)]
        self.process: subprocess.Popen[bytes] | None = None  # the proxy's
        self.log_path = run_dir / f"{proxy}.log"

    def start(self) -> Deployment:
        """Certificates, Redis, the processes, then the proxy, once each answers; returns itself."""
        self.make_certificate()
        self.redis.start()
        for worker in self.workers:
            worker.start()
        self.start_proxy()
        return self

    def make_certificate(self) -> None:
        authority = trustme.CA()
        authority.cert_pem.write_to_path(str(self.ca_file))
        certificate = authority.issue_cert(HOST, "localhost")
        certificate.private_key_and_cert_chain_pem.write_to_path(str(self.pem))
        certificate.private_key_pem.write_to_path(str(self.key))
        self.cert.write_bytes(b"".join(pem.bytes() for pem in certificate.cert_chain_pems))

    def start_proxy(self) -> None:
        executable = shutil.which(self.proxy)
        if executable is None:
            raise RuntimeError(missing_message([PROXIES[self.proxy]]))
        addresses = [worker.url.removeprefix("http://") for worker in self.workers]
        config, env = self.run_dir / f"{self.proxy}.conf", dict(os.environ)
        if self.proxy == "haproxy":  # its configuration reads the environment; the servers go at its end
            config.write_text(HAPROXY_CFG.read_text() + "".join(f"    server {a} {a}\n" for a in addresses))
            env.update(DEPLOY_HOST=HOST, DEPLOY_PORT=str(self.port), DEPLOY_PEM=str(self.pem))
            command = [executable, "-db", "-f", str(config)]  # in the foreground, logging to stderr
        else:
            servers = "".join(f"        server {a} max_fails=1 fail_timeout=2s;\n" for a in addresses)
            values = {"RUN_DIR": self.run_dir, "HOST": HOST, "PORT": self.port, "CERT": self.cert, "KEY": self.key}
            text = NGINX_CONF.read_text().replace("@SERVERS@", servers)
            for name, value in values.items():
                text = text.replace(f"@{name}@", str(value))
            config.write_text(text)
            command = [executable, "-p", str(self.run_dir), "-e", "stderr", "-c", str(config), "-g", "daemon off;"]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        if not wait_started(self.process, self.healthy, START_TIMEOUT):
            self.stop()
            raise RuntimeError(f"{self.proxy} did not answer {self.url}/healthz:\n{self.log_path.read_text()}")

    def ssl_context(self) -> ssl.SSLContext:
        """What a client of this deployment trusts: the run's certificate authority."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    def healthy(self, query: str = "") -> bool:
        """Whether ``/healthz`` answers 200 through the proxy (``query``: to find the request in a process's log)."""
        try:
            return httpx2.get(f"{self.url}/healthz{query}", verify=self.ssl_context(), timeout=2).status_code == 200
        except httpx2.HTTPError:
            return False

    def wait_routed(self, worker: ServerProcess, timeout: float) -> None:
        """Wait until the proxy sends new connections to ``worker``, back after a restart (HAProxy once its health
        check passes; nginx once ``fail_timeout`` has passed): a request through the proxy shows in its log."""
        assert worker.process is not None
        if not wait_started(worker.process, lambda: self.routes_to(worker), timeout):
            raise RuntimeError(f"{self.proxy} sent no request to {worker.url} within {timeout} s")

    def routes_to(self, worker: ServerProcess) -> bool:
        """Whether a new connection through the proxy goes to ``worker`` (leastconn: the one with fewest)."""
        probe = secrets.token_hex(8)
        return self.healthy(f"?probe={probe}") and probe in worker.log()

    def stop(self) -> None:
        """The proxy first (no new connections), then the processes (1001 to every client), then Redis."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for worker in self.workers:
            worker.stop()
        self.redis.kill()


@contextmanager
def deployed(
    impl: Implementation, workers: int, run_dir: Path, *, port: int = 0, proxy: str = "haproxy"
) -> Iterator[Deployment]:
    """A ``Deployment``, started, and stopped when the block ends (also when it fails)."""
    deployment = Deployment(impl, workers, run_dir, port=port, proxy=proxy)
    try:
        yield deployment.start()
    finally:
        deployment.stop()


def stop_once(signum: int, frame: object) -> None:
    """The first Ctrl+C or SIGTERM stops everything (as KeyboardInterrupt, also while starting); the next ones are
    ignored, so that they cannot cut the clean-up short and leave the proxy, the processes or Redis running."""
    for stop_signal in STOP_SIGNALS:
        signal.signal(stop_signal, signal.SIG_IGN)
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--impl", choices=sorted(IMPLEMENTATIONS), default="fastapi")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=8443)
    parser.add_argument("--proxy", choices=sorted(PROXIES), default="haproxy")
    options = parser.parse_args()
    for stop_signal in STOP_SIGNALS:
        signal.signal(stop_signal, stop_once)
    with contextlib.suppress(KeyboardInterrupt), tempfile.TemporaryDirectory(prefix="chat-deploy-") as tmp:
        run_dir = Path(tmp)
        impl = IMPLEMENTATIONS[options.impl]
        with deployed(impl, options.workers, run_dir, port=options.port, proxy=options.proxy) as deployment:
            print(f"Chat ({options.impl}), {options.workers} processes behind {options.proxy}: {deployment.url}")
            print(f"Your browser will warn about the certificate: trust {deployment.ca_file}, or accept it once.")
            logs = [deployment.log_path, *(worker.log_path for worker in deployment.workers)]
            print("Logs, while it runs: " + ", ".join(str(path) for path in logs))
            while True:
                signal.pause()  # until Ctrl+C or SIGTERM


if __name__ == "__main__":
    main()
