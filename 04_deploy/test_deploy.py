"""Chapter 4's own tests: each chapter, two processes on one Redis, behind each proxy over TLS (SPEC.md §4, §17)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx2
import psutil
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Origin

from deploy import PROXIES, Deployment, deployed
from tests.harness import free_port
from tests.implementations import IMPLEMENTATIONS

TIMEOUT = 5.0
STOP_TIMEOUT = 15.0  # deploy.py stops the proxy (5 s at most), the processes (SPEC.md §14: 5 s), then Redis
ADDRESS = re.compile(r" ([0-9.]+):[0-9]+ ")  # a log line's client: host:port
ALICE, BOB = ("127.0.0.2", 0), ("127.0.0.3", 0)  # loopback addresses of their own, to tell them apart in the logs


@pytest.fixture(params=[(proxy, impl) for proxy in PROXIES for impl in sorted(IMPLEMENTATIONS)], ids="-".join)
def deployment(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Deployment]:
    """Two processes of a chapter on one Redis, behind HAProxy or nginx: each test runs with every pair."""
    proxy, impl = request.param
    with deployed(IMPLEMENTATIONS[impl], 2, tmp_path, proxy=proxy) as running:
        yield running


def token(deployment: Deployment, user: str) -> str:
    response = httpx2.get(f"{deployment.url}/api/token", params={"user": user}, verify=deployment.ssl_context())
    response.raise_for_status()
    return str(response.json()["token"])


async def next_of(ws: ClientConnection, kind: str) -> dict[str, object]:
    """The next frame of type ``kind``, skipping others."""
    async with asyncio.timeout(TIMEOUT):
        while True:
            frame: dict[str, object] = json.loads(await ws.recv())
            if frame["type"] == kind:
                return frame


async def test_the_page_over_https(deployment: Deployment) -> None:
    """§2 through the proxy: the page over https://, with the certificate of the run."""
    response = httpx2.get(f"{deployment.url}/", verify=deployment.ssl_context(), timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")


def bindable(host: str) -> bool:
    """Whether a socket can have this address here: Linux answers every 127.* address, macOS only 127.0.0.1."""
    with socket.socket() as sock:
        try:
            sock.bind((host, 0))
        except OSError:
            return False
        return True


@pytest.mark.xfail(
    not (bindable(ALICE[0]) and bindable(BOB[0])),
    reason="the loopback interface has only 127.0.0.1 (macOS: sudo ifconfig lo0 alias 127.0.0.2 up, and 127.0.0.3)",
    raises=OSError,
    strict=True,
)
async def test_chat_over_wss(deployment: Deployment) -> None:
    """§7, §16.1, §17 through the proxy: two members from the page's https:// origin, each on either process, chat
    over wss:// (the proxy balances by open connections: the two land on different processes), and each process's
    log shows its member's own address (127.0.0.2, 127.0.0.3), not the proxy's."""
    url = deployment.url.replace("https://", "wss://") + "/ws/chat/lobby"
    context, origin = deployment.ssl_context(), Origin(deployment.origin)
    async with (
        connect(f"{url}?token={token(deployment, 'alice')}", ssl=context, origin=origin, local_addr=ALICE) as alice,
        connect(f"{url}?token={token(deployment, 'bob')}", ssl=context, origin=origin, local_addr=BOB) as bob,
    ):
        await next_of(alice, "welcome")
        await next_of(bob, "welcome")
        await alice.send(json.dumps({"type": "chat.message", "id": "m1", "payload": {"text": "hello"}}))
        for member in (alice, bob):
            message = await next_of(member, "chat.message")
            payload = message["payload"]
            assert isinstance(payload, dict) and (payload["user"], payload["text"]) == ("alice", "hello")
    clients = [  # the addresses in each process's log lines of the handshake
        {found[1] for line in worker.log().splitlines() if "/ws/chat/lobby" in line and (found := ADDRESS.search(line))}
        for worker in deployment.workers
    ]
    assert sorted(map(sorted, clients)) == [[ALICE[0]], [BOB[0]]]  # one on each process: the message crossed Redis


async def test_other_origins_are_refused(deployment: Deployment) -> None:
    """§4 through the proxy: a page of another origin gets 403."""
    url = deployment.url.replace("https://", "wss://") + f"/ws/chat/lobby?token={token(deployment, 'eve')}"
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, ssl=deployment.ssl_context(), origin=Origin("https://evil.example")):
            pass
    assert refused.value.response.status_code == 403


async def welcomed(deployment: Deployment, user: str, query: str = "") -> tuple[ClientConnection, dict[str, object]]:
    """Connect through the proxy, as a page does (its origin, the run's CA), and read the welcome."""
    url = deployment.url.replace("https://", "wss://") + f"/ws/chat/lobby?token={token(deployment, user)}{query}"
    ws = await connect(url, ssl=deployment.ssl_context(), origin=Origin(deployment.origin), open_timeout=TIMEOUT)
    return ws, await next_of(ws, "welcome")


async def test_a_killed_process(deployment: Deployment) -> None:
    """§17 behind the proxy: the process of one member is killed (SIGKILL); the proxy sends every new connection to
    the other one at once (HAProxy retries it there, nginx tries the next upstream) and the member resumes there:
    nothing lost, nothing twice."""
    alice, welcome = await welcomed(deployment, "alice")
    (killed,) = [worker for worker in deployment.workers if "/ws/chat/lobby" in worker.log()]
    bob, _ = await welcomed(deployment, "bob")  # on the other process (the proxy balances open connections)
    await alice.send(json.dumps({"type": "chat.message", "id": "m1", "payload": {"text": "before"}}))
    assert (await next_of(bob, "chat.message"))["seq"] == 1
    assert (await next_of(alice, "chat.message"))["seq"] == 1
    killed.kill()
    with pytest.raises(ConnectionClosed):
        await next_of(alice, "chat.message")  # the proxy closes the client's side
    visitors = [await welcomed(deployment, f"visitor{n}") for n in range(3)]  # no 502 or 503 meanwhile
    alice, resumed = await welcomed(deployment, "alice", f"&since=1&epoch={welcome['payload']['epoch']}")  # type: ignore[index]
    assert resumed["payload"]["resumed"] is True  # type: ignore[index]
    await alice.send(json.dumps({"type": "chat.message", "id": "m2", "payload": {"text": "after"}}))
    assert (await next_of(alice, "ack"))["seq"] == 2
    for member in (alice, bob):
        assert (await next_of(member, "chat.message"))["seq"] == 2
    for ws in [alice, bob, *(visitor for visitor, _ in visitors)]:
        await ws.close()


def test_stopping_stops_everything() -> None:
    """`make run-deploy`: SIGTERM, twice in a row as an impatient process manager sends it, stops the proxy, the
    processes and Redis, and the script exits without a traceback."""
    script = Path(__file__).with_name("deploy.py")
    command = [sys.executable, str(script), "--impl", "websockets", "--port", str(free_port())]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    started: list[psutil.Process] = []
    try:
        assert process.stdout is not None
        printed = [process.stdout.readline() for _ in range(3)]
        assert printed[2].startswith("Logs, while it runs:"), printed
        started = psutil.Process(process.pid).children(recursive=True)
        names = sorted(child.name() for child in started)
        assert len(started) == 4 and names[0] == "haproxy" and names[-1] == "redis-server", names  # and 2 Pythons
        process.send_signal(signal.SIGTERM)
        process.send_signal(signal.SIGTERM)
        assert process.wait(STOP_TIMEOUT) == 0
        assert "Traceback" not in process.stdout.read()
        _, alive = psutil.wait_procs(started, timeout=STOP_TIMEOUT)
        assert alive == []
    finally:
        process.kill()  # whatever a failure left running
        for child in started:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
