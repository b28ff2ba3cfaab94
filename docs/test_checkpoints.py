"""The chapters' "what you should see" blocks: each server, started as its README says, prints those lines."""

from __future__ import annotations

import subprocess

import pytest

from docs.snippets import ROOT
from docs.transcripts import Command, commands, differences, start
from tests.harness import free_port

CHAPTERS = ["01_fastapi", "02_channels", "03_websockets", "04_deploy"]
STARTS = [
    command
    for chapter in CHAPTERS
    for command in commands(ROOT / chapter / "README.md")
    if command.command.startswith("make run-")  # chapter 4's other transcripts need the deployment it starts
]


def test_every_chapter_shows_its_start() -> None:
    """Each chapter's README shows what `make run-…` prints (so the test below has something to check)."""
    assert sorted(command.command for command in STARTS) == sorted(
        [
            *(f"make run-{impl}" for impl in ("fastapi", "channels", "websockets")),
            "make run-deploy IMPL=fastapi WORKERS=2",
        ]
    )


@pytest.mark.parametrize("command", STARTS, ids=[command.command for command in STARTS])
def test_server_prints_what_its_readme_shows(command: Command) -> None:
    """`make run-…` prints the README's lines (`…` standing for what is the machine's: the descriptor limit)."""
    # make makes .venv again when the pins changed: not under the tests' feet (`make test` installs first)
    plan = subprocess.run(["make", "-n", "venv"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "pip install" not in plan, "run `make venv` first"
    problems = differences(command, start(command, free_port()))
    assert not problems, f"{command.where}: `{command.command}` printed something else:\n" + "\n".join(problems)
