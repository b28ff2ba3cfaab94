"""Terminal transcripts in the course's Markdown: commands with the output they print, checked by running them.

A transcript is a ``console`` code block: each line that starts with ``$ `` is a command, and the lines up to the
next command are what it prints. In the expected output, ``…`` stands for any text on its line (a date, a
token). ``run()`` runs each command with bash from the repository's root, against a server the test started
instead of the one the text assumes (``127.0.0.1:8001``), and ``differences()`` says where the output differs.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

from docs.snippets import ROOT

FENCE = "```console"
PROMPT = "$ "
ANY = "…"


@dataclass
class Command:
    """One command of a transcript, and the lines it should print."""

    doc: Path
    line: int  # the command's line in the doc, from 1
    command: str
    expected: list[str]

    @property
    def where(self) -> str:
        return f"{self.doc.relative_to(ROOT)}:{self.line}"


def commands(doc: Path) -> list[Command]:
    """Every command of every transcript in ``doc``, in order."""
    found: list[Command] = []
    inside = False
    for number, text in enumerate(doc.read_text().splitlines(), 1):
        if not inside:
            inside = text == FENCE
        elif text == "```":
            inside = False
        elif text.startswith(PROMPT):
            found.append(Command(doc, number, text.removeprefix(PROMPT), []))
        else:
            assert found, f"{doc.relative_to(ROOT)}:{number}: output before any command"
            found[-1].expected.append(text)
    return found


def matches(expected: str, actual: str) -> bool:
    """Whether a printed line is the transcript's, ``…`` matching anything."""
    pattern = ".*".join(re.escape(part) for part in expected.split(ANY))
    return re.fullmatch(pattern, actual) is not None


def run(command: Command, address: str, timeout: float = 60) -> list[str]:
    """The lines the command prints (stdout and stderr), against the server at ``address`` (host:port)."""
    result = subprocess.run(
        ["bash", "-c", command.command.replace("127.0.0.1:8001", address)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = (result.stdout + result.stderr).replace("\r\n", "\n").replace(address, "127.0.0.1:8001")
    return [line.rstrip() for line in output.rstrip("\n").splitlines()]


def differences(command: Command, actual: list[str]) -> list[str]:
    """Where the output differs from the transcript: empty when it matches."""
    expected = [line.rstrip() for line in command.expected]
    while expected and not expected[-1]:
        expected.pop()
    while actual and not actual[-1]:
        actual = actual[:-1]
    problems = [
        f"line {i + 1}: expected {want!r}, got {got!r}"
        for i, (want, got) in enumerate(zip(expected, actual, strict=False))
        if not matches(want, got)
    ]
    if len(expected) != len(actual):
        problems.append(f"expected {len(expected)} lines, got {len(actual)}:\n" + "\n".join(actual))
    return problems


def start(command: Command, port: int, timeout: float = 60) -> list[str]:
    """A command that runs until stopped (a server): its first lines, as many as the transcript shows, then it is
    stopped with SIGTERM. ``make`` commands get ``PORT=port``; the port is shown as the transcript's again."""
    shown = re.search(r"PORT=(\d+)|:(800\d|8443)", "\n".join(command.expected))
    assert shown, f"{command.where}: the transcript shows no port"
    port_shown = shown[1] or shown[2]
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("CHAT_", "MAKE", "MFLAGS"))}
    text = command.command + (f" PORT={port}" if command.command.startswith("make ") else "")
    process = subprocess.Popen(
        ["bash", "-c", f"exec {text}"],
        cwd=ROOT,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert process.stdout is not None
    stop = threading.Timer(timeout, os.killpg, (process.pid, signal.SIGTERM))  # if it prints less than expected
    stop.start()
    lines: list[str] = []
    try:
        while len(lines) < len(command.expected) and (line := process.stdout.readline()):
            lines.append(line.rstrip().replace(str(port), port_shown))
    finally:
        stop.cancel()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout)
    return lines
