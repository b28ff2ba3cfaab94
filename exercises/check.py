"""Checks every exercise: its tests fail on this tree, and pass once its solution is applied to a copy of it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "exercises" / "solutions"
NOT_COPIED = shutil.ignore_patterns(
    ".venv", ".git", ".mypy_cache", ".ruff_cache", "test-artifacts", "results", "node_modules", "__pycache__"
)
TIMEOUT = 300  # seconds, for one exercise's tests


def run_exercise(number: int, tree: Path, report: Path) -> tuple[int, int, int]:
    """Run exercise ``number``'s tests in ``tree`` (its own chatcore first on the path): (passed, failed, other),
    other being errors and skips. Prints pytest's output unless every test passed or failed cleanly."""
    # The suite's own servers, with the tree's code: no CHAT_* setting from outside, no running server.
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT_")} | {"PYTHONPATH": str(tree)}
    command = [sys.executable, "-m", "pytest", "tests/exercises", f"--exercise={number}", f"--junitxml={report}", "-q"]
    process = subprocess.Popen(
        command, cwd=tree, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        output, _ = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # pytest and the servers it started
        output, _ = process.communicate()
        print(f"exercise {number}: pytest took more than {TIMEOUT} s\n{output[-3000:]}")
        return 0, 0, 1
    suite = ET.parse(report).getroot().find("testsuite") if report.exists() else None
    if suite is None:
        print(output[-3000:])
        return 0, 0, 1
    tests, failed = int(suite.get("tests", 0)), int(suite.get("failures", 0))
    other = int(suite.get("errors", 0)) + int(suite.get("skipped", 0))
    if other:
        print(output[-3000:])
    return tests - failed - other, failed, other


def main() -> int:
    failures = []
    for patch in sorted(SOLUTIONS.glob("*.patch")):
        number = int(patch.name.split("-", 1)[0])
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix=f"exercise-{number}-") as tmp:
            unsolved = run_exercise(number, ROOT, Path(tmp) / "unsolved.xml")
            tree = Path(tmp) / "repo"
            shutil.copytree(ROOT, tree, ignore=NOT_COPIED)
            applied = subprocess.run(["git", "apply", str(patch)], cwd=tree, capture_output=True, text=True)
            if applied.returncode != 0:
                failures.append(f"{patch.name} does not apply: {applied.stderr.strip()}")
                continue
            solved = run_exercise(number, tree, Path(tmp) / "solved.xml")
        took = time.monotonic() - started
        print(
            f"exercise {number}: {unsolved[1]} of {sum(unsolved)} tests fail without its solution; "
            f"with {patch.name}, {solved[0]} of {sum(solved)} pass ({took:.0f} s)"
        )
        if unsolved[1] == 0 or unsolved[2]:
            failures.append(f"exercise {number}: its tests should fail (and only fail or pass) without a solution")
        if solved[0] == 0 or solved[1] or solved[2]:
            failures.append(f"exercise {number}: every test should pass with {patch.name}")
    for failure in failures:
        print(failure, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
