"""The README's "Your machine": a Python too old or missing is named in one line, and what the tests need from the
machine is found, or named with the commands that install it (tests/machine.py)."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from docs.snippets import ROOT
from tests import machine

pytestmark = pytest.mark.timeout(120)


def make_venv(python: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """``make run``'s first step, with ``python`` named, into a virtualenv of the test's own."""
    command = ["make", "--no-print-directory", "venv", f"PYTHON={python}", f"VENV={tmp_path / 'venv'}"]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False, timeout=60)


def hint() -> str:
    """What the message suggests: the newest Python 3.11+ that runs here by its usual name, or where to get one."""
    for newer in ("python3.14", "python3.13", "python3.12", "python3.11"):
        with contextlib.suppress(OSError):
            if subprocess.run([newer, "-c", ""], capture_output=True, check=False).returncode == 0:
                return f"name another, e.g. PYTHON={newer} make venv"
    return "install one (README.md, Your machine, says how), then name it: PYTHON=python3.12 make venv"


def stub(tmp_path: Path, name: str, script: str) -> Path:
    path = tmp_path / name
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(0o755)
    return path


@pytest.mark.parametrize(
    ("script", "line"),
    [
        (
            "echo 3.9.18",
            "Python 3.11 or newer is needed, and {python} is 3.9.18: {hint}",
        ),
        (
            "exit 127",
            "No Python at PYTHON={python}: install Python 3.11 or newer, or name one: PYTHON=python3.12 make venv",
        ),
        (
            f'case "$*" in *ensurepip*) exit 1;; esac; exec {sys.executable} "$@"',
            "{python} ({version}) has no venv module: on Debian or Ubuntu, sudo apt-get install python3-venv"
            " (or python{minor}-venv)",
        ),
    ],
    ids=["too old", "missing", "without venv"],
)
def test_a_python_that_cannot_make_the_venv_is_named(tmp_path: Path, script: str, line: str) -> None:
    """`PYTHON=… make run` with a Python older than 3.11, none, or one without venv: one line says what to do, and
    nothing is made."""
    python = stub(tmp_path, "python", script)
    done = make_venv(str(python), tmp_path)
    version, minor = ".".join(map(str, sys.version_info[:3])), ".".join(map(str, sys.version_info[:2]))
    expected = line.format(python=python, version=version, minor=minor, hint=hint())
    assert (done.returncode, done.stdout) == (2, expected + "\n")
    assert not (tmp_path / "venv").exists()


def test_what_the_tests_need_is_named_with_its_commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With no redis-server, curl, haproxy, nginx or browser to be found, `python -m tests.machine` names each,
    with this system's commands that install them, and how to name a browser."""
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("PLAYWRIGHT_BROWSERS_PATH", str(tmp_path))  # no Chromium of Playwright's there
    monkeypatch.delenv("CHROMIUM", raising=False)
    monkeypatch.setattr(machine, "MACOS_BROWSERS", [])  # a Mac's /Applications is not on PATH
    monkeypatch.setattr(sys, "argv", ["machine.py"])
    assert machine.main() == 1
    message = capsys.readouterr().err
    assert message == machine.missing_message(machine.NEEDS) + "\n"
    assert message.startswith(
        "Not found on this machine: redis-server, curl, haproxy, nginx, a Chromium-family browser. On "
    )
    assert message.endswith(" Or name a browser you have: CHROMIUM=/path/to/chrome.\n")


def test_each_system_gets_its_own_commands() -> None:
    """Debian installs all five with apt; Ubuntu takes the browser from Playwright (its chromium is a snap); macOS
    uses Homebrew and Playwright; elsewhere, the message says what to look for."""
    needs = machine.NEEDS
    sudo = machine.sudo()
    playwright = machine.PLAYWRIGHT
    assert machine.install_commands(needs, "debian") == [
        [*sudo, "apt-get", "update", "-qq"],
        [*sudo, "apt-get", "install", "-y", "-qq", "redis-server", "curl", "haproxy", "nginx", "chromium"],
    ]
    assert machine.install_commands(needs, "ubuntu") == [
        [*sudo, "apt-get", "update", "-qq"],
        [*sudo, "apt-get", "install", "-y", "-qq", "redis-server", "curl", "haproxy", "nginx"],
        [*playwright, "--with-deps", "chromium"],
    ]
    assert machine.install_commands([machine.BROWSER], "ubuntu") == [[*playwright, "--with-deps", "chromium"]]
    assert machine.install_commands(needs, "macos") == [
        ["brew", "install", "redis", "haproxy", "nginx"],
        [*playwright, "chromium"],
    ]
    assert machine.install_commands(needs, "other") == []
    assert machine.missing_message([machine.REDIS], "other").endswith(
        ": install redis-server with the system's package manager."
    )
    assert machine.missing_message([machine.CURL, machine.BROWSER], "other").endswith(
        ": install curl with the system's package manager, and get Playwright's Chromium with "
        f"{shlex.join(machine.relative([sys.executable]))} -m playwright install chromium. Or name a browser you have:"
        " CHROMIUM=/path/to/chrome."
    )


def test_a_snap_is_never_the_browser(tmp_path: Path) -> None:
    """Ubuntu's chromium is a snap: a link to /usr/bin/snap, or the deb's wrapper script; neither is taken."""
    snap = tmp_path / "snap"
    snap.write_bytes(b"\x7fELF snapd")
    linked = tmp_path / "chromium"
    linked.symlink_to(snap)
    wrapper = stub(tmp_path, "chromium-browser", 'exec /snap/bin/chromium "$@"')
    binary = tmp_path / "chrome"
    binary.write_bytes(b"\x7fELF chrome")
    script = stub(tmp_path, "google-chrome", 'exec /opt/google/chrome/chrome "$@"')
    verdicts = [machine.is_snap(path) for path in (linked, wrapper, tmp_path / "gone", binary, script)]
    assert verdicts == [True, True, True, False, False]


def test_a_named_browser_that_is_not_there_is_said_so(tmp_path: Path) -> None:
    """The page's tests with CHROMIUM naming no executable: a one-line failure that says so, no traceback."""
    env = {**os.environ, "CHROMIUM": str(tmp_path / "chrome")}
    command = [
        sys.executable,
        "-m",
        "pytest",
        "tests/test_02_page.py",
        "-x",
        "-q",
        "--impl=fastapi",
    ]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=100)
    assert done.returncode == 1
    assert f"CHROMIUM={tmp_path / 'chrome'} is not an executable file: name a Chromium-family browser." in done.stdout
    assert "Traceback" not in done.stdout
    assert re.search(r"test_02_page\.py:\d", done.stdout) is None  # no frame of the test's code: just the message
