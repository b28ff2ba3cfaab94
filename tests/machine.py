"""What the tests need from the machine, outside Python: found, installed where the course knows how, or named.

The chapters need none of it (`make run` installs Python packages only). The tests need ``redis-server`` (the
scale-out tests start their own), ``curl`` (the primer's first command), ``haproxy`` and ``nginx`` (chapter 4 starts its
own, in front of the chapters) and a Chromium-family browser for the page's tests (``CHROMIUM=/path/to/browser`` names
one). Node.js comes with the Python packages (.venv/bin/node).

    python -m tests.machine            what is found, and what is missing with the commands that install it
    python -m tests.machine --install  installs what is missing (apt-get, Homebrew, Playwright), then checks again
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

BROWSERS = ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "microsoft-edge", "brave-browser"]
MACOS_BROWSERS = [
    "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
    "/Applications/Chromium.app/Contents/MacOS/Chromium",
]
PLAYWRIGHT = [sys.executable, "-m", "playwright", "install"]


def system() -> str:
    """``debian``, ``ubuntu`` (and its derivatives), ``macos``, or ``other``."""
    if sys.platform == "darwin":
        return "macos"
    try:
        release = platform.freedesktop_os_release()
    except OSError:
        return "other"
    ids = {release.get("ID", ""), *release.get("ID_LIKE", "").split()}
    return "ubuntu" if "ubuntu" in ids else "debian" if "debian" in ids else "other"


def is_snap(path: Path) -> bool:
    """Whether ``path`` runs a snap, or can't be read. Ubuntu's chromium is a snap (its deb only installs the snap):
    it does not run in containers or in WSL without snapd, and its confinement keeps it out of Playwright's profile
    directory. A snap's command is a link to /usr/bin/snap in /snap/bin; Ubuntu's deb wrapper is a shell script."""
    if path.parts[:3] == ("/", "snap", "bin") or path.resolve().name == "snap":
        return True
    try:
        with path.open("rb") as file:
            head = file.read(4096)
    except OSError:
        return True
    return head.startswith(b"#!") and b"/snap/" in head


def playwright_chromium() -> Path | None:
    """The Chromium that ``playwright install chromium`` downloaded, if it did."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        path = Path(playwright.chromium.executable_path)
    return path if path.exists() else None


class BrowserNotFound(Exception):
    """No browser for the page's tests; the message says how to get one."""


def browser() -> Path:
    """The browser the page's tests drive: ``CHROMIUM`` if set; else the first Chromium-family browser on PATH (not
    a snap) or in macOS's /Applications; else Playwright's own Chromium, if it has been installed."""
    if named := os.environ.get("CHROMIUM"):
        path = Path(shutil.which(named) or named)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise BrowserNotFound(f"CHROMIUM={named} is not an executable file: name a Chromium-family browser.")
        return path
    candidates = [Path(found) for name in BROWSERS if (found := shutil.which(name))]
    candidates += [Path(app) for app in MACOS_BROWSERS if sys.platform == "darwin"]
    for path in candidates:
        if path.exists() and not is_snap(path):
            return path
    if (own := playwright_chromium()) is not None:
        return own
    raise BrowserNotFound(f"No browser found for the page's tests. {missing_message([BROWSER])}")


def has_browser() -> bool:
    try:
        browser()
    except BrowserNotFound:
        return False
    return True


@dataclass(frozen=True)
class Need:
    """Something the tests need: how to tell it's there, and how each system installs it."""

    name: str
    found: Callable[[], bool]
    apt: str | None  # the Debian package, Ubuntu's too unless ``ubuntu`` is set
    brew: str | None  # the Homebrew formula (None: macOS has it, or ``macos`` is set)
    ubuntu: list[str] | None = None  # a command that installs it on Ubuntu instead
    macos: list[str] | None = None  # a command that installs it on macOS instead


REDIS = Need("redis-server", lambda: shutil.which("redis-server") is not None, apt="redis-server", brew="redis")
CURL = Need("curl", lambda: shutil.which("curl") is not None, apt="curl", brew=None)
HAPROXY = Need("haproxy", lambda: shutil.which("haproxy") is not None, apt="haproxy", brew="haproxy")
NGINX = Need("nginx", lambda: shutil.which("nginx") is not None, apt="nginx", brew="nginx")
BROWSER = Need(
    "a Chromium-family browser",
    has_browser,
    apt="chromium",
    brew=None,
    ubuntu=[*PLAYWRIGHT, "--with-deps", "chromium"],
    macos=[*PLAYWRIGHT, "chromium"],
)
NEEDS = [REDIS, CURL, HAPROXY, NGINX, BROWSER]


def sudo() -> list[str]:
    return [] if os.geteuid() == 0 else ["sudo"]


def install_commands(needs: list[Need], where: str) -> list[list[str]]:
    """The commands that install ``needs`` on ``where`` (a ``system()``), or [] if the course doesn't know how."""
    if where in ("debian", "ubuntu"):
        own = [need.ubuntu for need in needs if where == "ubuntu" and need.ubuntu]
        packages = [need.apt for need in needs if need.apt and not (where == "ubuntu" and need.ubuntu)]
        apt = [[*sudo(), "apt-get", "update", "-qq"], [*sudo(), "apt-get", "install", "-y", "-qq", *packages]]
        return (apt if packages else []) + own
    if where == "macos":
        formulas = [need.brew for need in needs if need.brew]
        return ([["brew", "install", *formulas]] if formulas else []) + [need.macos for need in needs if need.macos]
    return []


def missing_message(needs: list[Need], where: str | None = None) -> str:
    """What is missing, and the commands that install it here, or what to look for on a system the course doesn't
    know; a browser can also be named with CHROMIUM."""
    where = where or system()
    if commands := install_commands(needs, where):
        how = " && ".join(shlex.join(relative(command)) for command in commands)
    else:
        known = [need.name for need in needs if need is not BROWSER]
        ways = [f"install {' and '.join(known)} with the system's package manager"] if known else []
        if BROWSER in needs:
            ways.append(f"get Playwright's Chromium with {shlex.join(relative([*PLAYWRIGHT, 'chromium']))}")
        how = ", and ".join(ways)
    names = ", ".join(need.name for need in needs)
    named = " Or name a browser you have: CHROMIUM=/path/to/chrome." if BROWSER in needs else ""
    return f"Not found on this machine: {names}. On {platform_name(where)}: {how}.{named}"


def relative(command: list[str]) -> list[str]:
    """``command`` as a student types it: the virtualenv's python as .venv/bin/python."""
    python = Path(sys.executable)
    shown = str(python.relative_to(Path.cwd())) if python.is_relative_to(Path.cwd()) else str(python)
    return [shown if part == sys.executable else part for part in command]


def platform_name(where: str) -> str:
    return {"debian": "Debian", "ubuntu": "Ubuntu", "macos": "macOS"}.get(where, f"this system ({platform.system()})")


def install(missing: list[Need]) -> str | None:
    """Run the commands that install ``missing`` here; what stood in the way, if something did."""
    commands = install_commands(missing, system())
    if not commands:
        return None
    needed = {command[0] for command in commands if command[0] in ("sudo", "brew")}
    if "sudo" in needed and shutil.which("sudo") is None:
        return "sudo is not installed: run these commands as root"
    if "brew" in needed and shutil.which("brew") is None:
        commands = [command for command in commands if command[0] != "brew"]  # Playwright's needs no Homebrew
        stood = "Homebrew is not installed (https://brew.sh)"
    else:
        stood = None
    print(f"Installing what the tests need: {', '.join(need.name for need in missing)}", flush=True)
    for command in commands:
        print(f"  {shlex.join(relative(command))}", flush=True)
        if "apt-get" in command:  # no questions; sudo would drop the variable from the environment
            at = command.index("apt-get")
            command = [*command[:at], "env", "DEBIAN_FRONTEND=noninteractive", *command[at:]]
        if subprocess.run(command, check=False).returncode:
            break
    return stood


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--install", action="store_true", help="install what is missing, then check again")
    options = parser.parse_args()
    if os.environ.get("CHROMIUM"):
        try:
            browser()
        except BrowserNotFound as exc:  # named by the student: nothing to install
            print(exc, file=sys.stderr)
            return 1
    missing = [need for need in NEEDS if not need.found()]
    stood = install(missing) if missing and options.install else None
    missing = [need for need in NEEDS if not need.found()] if options.install else missing
    if missing:
        print(f"{stood}. " if stood else "", missing_message(missing), sep="", file=sys.stderr)
        return 1
    print(f"The page's tests will use {browser()} (CHROMIUM=… names another).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
