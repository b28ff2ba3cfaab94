"""Tests of chapter 0's terminal client (`make chat`), against chapter 1's server over real sockets."""

from __future__ import annotations

import asyncio
import os
import sys
from asyncio.subprocess import PIPE, STDOUT
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from docs.transcripts import commands, differences
from tests.harness import ServerProcess
from tests.implementations import IMPLEMENTATIONS

CHAT = Path(__file__).with_name("chat.py")
README = Path(__file__).with_name("README.md")
TIMEOUT = 10.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {"CHAT_HEARTBEAT_INTERVAL": "0.5", "CHAT_HEARTBEAT_TIMEOUT": "3"}
    process = ServerProcess(IMPLEMENTATIONS["fastapi"], env, tmp_path_factory.mktemp("logs")).start()
    yield process
    process.stop()


class Terminal:
    """chat.py as a person runs it: lines typed in, lines read out."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.seen: list[str] = []

    async def type(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")
        await self.process.stdin.drain()

    async def wait_for(self, text: str) -> str:
        """The first output line (from now on) that contains ``text``."""
        assert self.process.stdout is not None
        async with asyncio.timeout(TIMEOUT):
            while True:
                line = (await self.process.stdout.readline()).decode()
                assert line, f"chat.py ended before printing {text!r}; it printed:\n{''.join(self.seen)}"
                self.seen.append(line)
                if text in line:
                    return line.rstrip("\n")


@pytest.fixture
async def terminals(server: ServerProcess) -> AsyncIterator[list[Terminal]]:
    started: list[Terminal] = []
    yield started
    for terminal in started:
        if terminal.process.returncode is None:
            terminal.process.kill()
        await terminal.process.wait()


async def start(terminals: list[Terminal], server: ServerProcess, *args: str, stdin: Any = PIPE) -> Terminal:
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # as in a terminal
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(CHAT), "--url", server.url, *args, stdin=stdin, stdout=PIPE, stderr=STDOUT, env=environ
    )
    terminals.append(Terminal(process))
    return terminals[-1]


async def test_chat_and_presence(server: ServerProcess, terminals: list[Terminal]) -> None:
    """Two people chat: each sees the welcome, the other's join and messages, and its own ack."""
    alice = await start(terminals, server, "--user", "alice", "--room", "t-chat")
    assert "members alice;" in await alice.wait_for("* welcome alice to t-chat")
    bob = await start(terminals, server, "--user", "bob", "--room", "t-chat")
    await bob.wait_for("* welcome bob to t-chat: members alice, bob;")
    assert await alice.wait_for("joined") == "* bob joined; 2 in the room"
    await bob.type("hello alice")
    assert (await alice.wait_for("hello")).endswith("] bob: hello alice")
    assert (await bob.wait_for("(ack: your ")).endswith(" is #1)")
    await bob.type("/quit")
    assert await bob.wait_for("* closed") == "* closed by you: 1000"
    assert await alice.wait_for("left") == "* bob left; 1 in the room"
    assert await bob.process.wait() == 0


async def test_raw_frames_get_errors(server: ServerProcess, terminals: list[Terminal]) -> None:
    """/raw sends a frame as typed: the server's error frames show what was wrong (SPEC.md §12)."""
    alice = await start(terminals, server, "--user", "alice", "--room", "t-raw")
    await alice.wait_for("* welcome")
    await alice.type("/raw not json")
    assert (await alice.wait_for("! error")).startswith("! error invalid_json (id null): ")
    await alice.type('/raw {"type": "chat.edit", "id": "e1"}')
    assert (await alice.wait_for("! error")).startswith('! error unknown_type (id "e1"): ')
    await alice.type("/ping")
    assert await alice.wait_for("* pong") == "* pong"


async def test_pings_and_heartbeat_timeout(server: ServerProcess, terminals: list[Terminal]) -> None:
    """Pings are shown and answered; with --no-pong the server closes the connection with 4000 (SPEC.md §11)."""
    alice = await start(terminals, server, "--user", "alice", "--room", "t-ping")
    assert await alice.wait_for("* ping") == "* ping from the server: answered pong"
    mute = await start(terminals, server, "--user", "mute", "--room", "t-ping", "--no-pong")
    assert await mute.wait_for("* ping") == "* ping from the server: not answered (--no-pong)"
    assert await mute.wait_for("* closed") == "* closed by the server: 4000 heartbeat timeout"
    assert await mute.process.wait() == 0
    assert await alice.wait_for("left") == "* mute left; 1 in the room"


async def test_input_from_a_file(server: ServerProcess, terminals: list[Terminal], tmp_path: Path) -> None:
    """Lines from a file are sent like typed ones; its end closes the connection normally."""
    script = tmp_path / "lines.txt"
    script.write_text("first\n\nsecond\n")
    with script.open() as stdin:
        alice = await start(terminals, server, "--user", "alice", "--room", "t-file", "--since", "0", stdin=stdin)
        assert (await alice.wait_for("alice: first")).startswith("[#1 ")
        assert (await alice.wait_for("alice: second")).startswith("[#2 ")
        assert await alice.wait_for("* closed") == "* closed by you: 1000"
        assert await alice.process.wait() == 0


async def test_refused_login(server: ServerProcess, terminals: list[Terminal]) -> None:
    """A name the server refuses is reported with the server's reason, not as an unreachable server."""
    bad = await start(terminals, server, "--user", "no spaces allowed")
    assert (await bad.wait_for("! ")).startswith("! GET /api/token answered 400: ")
    assert await bad.process.wait() == 1


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
async def test_the_readme_session(
    impl: str, tmp_path_factory: pytest.TempPathFactory, terminals: list[Terminal]
) -> None:
    """The session of the README's "what you should see", with `make chat` as it shows, line for line, against
    each chapter's server with its default settings (the chapters' READMEs say it is the same with them)."""
    shown = {command.command: command for command in commands(README) if command.command.startswith("make chat")}
    server = ServerProcess(IMPLEMENTATIONS[impl], {}, tmp_path_factory.mktemp("logs")).start()
    try:
        alice = await start_make(terminals, server, "alice")
        await alice.wait_for("* welcome")
        bob = await start_make(terminals, server, "bob")
        await bob.wait_for("* welcome")
        await alice.wait_for("joined")
        await bob.type("hello alice")
        await alice.wait_for("hello alice")
        await bob.wait_for("(ack")
        await bob.type("/quit")
        await alice.wait_for("left")
        await alice.type("/quit")
        for name, terminal in (("alice", alice), ("bob", bob)):
            async with asyncio.timeout(TIMEOUT):
                assert await terminal.process.wait() == 0
            assert terminal.process.stdout is not None
            printed = "".join(terminal.seen) + (await terminal.process.stdout.read()).decode()
            lines = [line.replace(f"127.0.0.1:{server.port}", "127.0.0.1:8001") for line in printed.splitlines()]
            for i in range(len(lines) - 1):  # the ack and the sender's own copy come in either order (SPEC.md §7)
                if lines[i].startswith("  (ack: ") and lines[i + 1].startswith("[#"):
                    lines[i : i + 2] = lines[i + 1], lines[i]
            problems = differences(shown[f"make chat NAME={name}"], lines)
            assert not problems, f"{name}'s terminal differs from the README:\n" + "\n".join(problems)
    finally:
        server.stop()


async def start_make(terminals: list[Terminal], server: ServerProcess, name: str) -> Terminal:
    """`make chat NAME=name` against ``server``, as a person runs it in a terminal."""
    skip = ("PYTHONUNBUFFERED", "MAKELEVEL", "MAKEFLAGS", "MFLAGS")
    environ = {k: v for k, v in os.environ.items() if k not in skip and not k.startswith("CHAT_")}
    process = await asyncio.create_subprocess_exec(
        "make", "--no-print-directory", "chat", f"NAME={name}", f"PORT={server.port}",
        cwd=CHAT.parent.parent, stdin=PIPE, stdout=PIPE, stderr=STDOUT, env=environ,
    )  # fmt: skip
    terminals.append(Terminal(process))
    return terminals[-1]
