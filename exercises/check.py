"""Checks every exercise: its tests fail on this tree, and pass once its solution is applied to a copy of it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "exercises" / "solutions"
NOT_COPIED = shutil.ignore_patterns(".venv", ".git", "test-artifacts", "results", "node_modules", "__pycache__")
TIMEOUT = 300  # seconds, for one exercise's tests


def run_exercise(number: int, tree: Path) -> int:
    """pytest's exit status for exercise ``number``'s tests in ``tree`` (its own chatcore first on the path)."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    command = [sys.executable, "-m", "pytest", "tests/exercises", f"--exercise={number}", "-q", "--no-header"]
    result = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    if result.returncode not in (0, 1):
        print(result.stdout[-3000:], result.stderr[-3000:], sep="\n")
    return result.returncode


def main() -> int:
    failures = []
    for patch in sorted(SOLUTIONS.glob("*.patch")):
        number = int(patch.name.split("-", 1)[0])
        started = time.monotonic()
        unsolved = run_exercise(number, ROOT)
        with tempfile.TemporaryDirectory(prefix=f"exercise-{number}-") as tmp:
            tree = Path(tmp) / "repo"
            shutil.copytree(ROOT, tree, ignore=NOT_COPIED)
            applied = subprocess.run(["git", "apply", str(patch)], cwd=tree, capture_output=True, text=True)
            if applied.returncode != 0:
                failures.append(f"{patch.name} does not apply: {applied.stderr.strip()}")
                continue
            solved = run_exercise(number, tree)
        print(
            f"exercise {number}: without its solution pytest exits {unsolved} (1 expected), with {patch.name} "
            f"{solved} (0 expected), {time.monotonic() - started:.0f} s"
        )
        if unsolved != 1:
            failures.append(f"exercise {number}'s tests do not fail on this tree (exit {unsolved})")
        if solved != 0:
            failures.append(f"exercise {number}'s tests fail with {patch.name} applied (exit {solved})")
    for failure in failures:
        print(failure, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
