"""The primer's commands (PRIMER.md), run against a fresh chapter 1 server: they print what the primer shows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from docs.transcripts import Command, commands, differences, run
from tests.harness import ServerProcess
from tests.implementations import IMPLEMENTATIONS

PRIMER = Path(__file__).with_name("PRIMER.md")
COMMANDS = commands(PRIMER)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Chapter 1 as `make run` starts it: default settings (the suite's secret aside)."""
    process = ServerProcess(IMPLEMENTATIONS["fastapi"], {}, tmp_path_factory.mktemp("logs")).start()
    yield process
    process.stop()


@pytest.mark.parametrize("command", COMMANDS, ids=[command.where for command in COMMANDS])
def test_command_prints_what_the_primer_shows(command: Command, server: ServerProcess) -> None:
    """Each command of the primer prints the lines under it (`…` standing for what changes from run to run)."""
    problems = differences(command, run(command, f"127.0.0.1:{server.port}"))
    assert not problems, f"{command.where}: `{command.command}` printed something else:\n" + "\n".join(problems)


def test_the_primer_has_transcripts() -> None:
    """The handshake, the frames and ASGI's events are shown by running them (so the test above checks them)."""
    assert [command.command.split()[-1] for command in COMMANDS][:1] == ["http://127.0.0.1:8001/ws/chat/lobby"]
    assert len(COMMANDS) == 3
