"""Run the Autobahn TestSuite's cases (kosoku) on each chapter's /ws/echo; rewrite docs/autobahn.md's tables."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from docs.autobahn.tables import BLOCKS, RESULTS, cell, counts, explain, load
from docs.snippets import blocks, fix_doc
from tests.harness import REPO, ServerProcess
from tests.implementations import IMPLEMENTATIONS, Implementation

REPORT = REPO / "docs" / "autobahn.md"

# The packages that speak WebSocket for each chapter (their versions go into the results and the report).
PACKAGES = {
    "fastapi": ("fastapi", "starlette", "uvicorn", "websockets"),
    "channels": ("channels", "daphne", "autobahn", "twisted"),
    "websockets": ("websockets",),
}
ECHO = {"CHAT_BENCH_ENDPOINTS": "1"}  # /ws/echo on (SPEC.md §18)
QUIET = {"CHAT_LOG_LEVEL": "warning"}  # no access log line per case
SIXTEEN_MIB = 16 * 2**20  # the largest message Autobahn sends (9.1.6)


@dataclass(frozen=True)
class Run:
    """One pass of the suite over a chapter: which cases, with which extra CHAT_* settings."""

    name: str
    title: str
    cases: tuple[str, ...] | None  # kosoku globs; None is the whole suite
    env: dict[str, str]
    timeout: float  # seconds for the whole pass


RUNS = (
    # The chapters as they ship: CHAT_MAX_MESSAGE_BYTES at its default, 65536.
    Run("default", "default settings (CHAT_MAX_MESSAGE_BYTES=65536)", None, {}, 420),
    # Only the cases the size limit decides, again with the limit out of the way, so that they test the library.
    Run(
        "16mib",
        f"CHAT_MAX_MESSAGE_BYTES={SIXTEEN_MIB}",
        tuple(f"9.{n}.*" for n in range(1, 7)),
        {"CHAT_MAX_MESSAGE_BYTES": str(SIXTEEN_MIB)},
        240,
    ),
)
TIMED_OUT = 3  # the exit status of a child whose cases did not finish in time


# ---------------------------------------------------------------------------------------------------------------
# Running


def short(value: Any, limit: int = 40) -> Any:
    """A payload cut down for the JSON file (Autobahn's messages go up to 16 MiB)."""
    if isinstance(value, str | bytes) and len(value) > limit:
        return f"{value[:limit]!r}... ({len(value)} {'chars' if isinstance(value, str) else 'bytes'})"
    return value.decode("latin-1") if isinstance(value, bytes) else value


def case_json(result: Any) -> dict[str, Any]:
    """The parts of kosoku's CaseResult that explain a verdict (kosoku's own report has them all); little for OK."""
    case: dict[str, Any] = {
        "id": result.case_id,
        "behavior": result.behavior.value,
        "behaviorClose": result.behavior_close.value,
        "remoteCloseCode": result.remote_close_code,
        "durationMs": result.duration,
    }
    if case["behavior"] in ("OK", "UNIMPLEMENTED") and case["behaviorClose"] == "OK":
        return case
    events = list(result.received or [])
    case.update(
        remoteCloseReason=result.remote_close_reason,
        localCloseCode=result.local_close_code,
        wasClean=result.was_clean,
        droppedByMe=result.dropped_by_me,
        result=result.result,
        resultClose=result.result_close,
        received=[[short(part) for part in event] for event in events[:3]],
        receivedCount=len(events),
    )
    case.update(description=result.description, expectation=result.expectation)
    return case


async def fuzz(url: str, cases: list[str] | None, limit_s: float) -> dict[str, Any]:
    """Run the cases (in this process: the child's side of ``fuzz_in_child``)."""
    from kosoku import FailureError, run_fuzzingclient

    try:
        async with asyncio.timeout(limit_s):
            results = await run_fuzzingclient(url, cases, None, concurrency=1)
    except FailureError as failure:  # some case did not pass: the results are in the exception
        results = list(failure.results)
    return {"request": results[0].http_request if results else "", "cases": [case_json(r) for r in results]}


def fuzz_in_child(url: str, run: Run) -> dict[str, Any]:
    """kosoku is native code: run it in a child process (this script again), so that a crash of it cannot take
    this process down; a child that died before writing its results is tried once more."""
    for attempt in (1, 2):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "results.json"
            command = [sys.executable, __file__, "--fuzz", url, "--out", str(out), "--limit", str(run.timeout)]
            command += [f"--case={glob}" for glob in run.cases or ()]
            try:
                child = subprocess.run(command, cwd=REPO, timeout=run.timeout + 30, check=False)
                code: int | str = child.returncode
            except subprocess.TimeoutExpired:
                code = "timeout"
            if out.exists():
                if code != 0:
                    print(f"  (kosoku exited with {code} after writing its results)", flush=True)
                return dict(json.loads(out.read_text()))
        print(f"  kosoku exited with {code} without results (attempt {attempt})", flush=True)
        if code in (TIMED_OUT, "timeout"):
            break  # too slow, not a crash: another try would only take as long again
    raise RuntimeError(f"kosoku gave no results against {url}")


def run_stack(impl: Implementation) -> dict[str, Any]:
    """Every pass of the suite against one chapter; the server is started afresh for each."""
    versions = {name: metadata.version(name) for name in ("kosoku", *PACKAGES.get(impl.name, ()))}
    data: dict[str, Any] = {
        "stack": impl.name,
        "server": " ".join(impl.command[1:]),
        "endpoint": "/ws/echo",
        "versions": versions,
        "python": sys.version.split()[0],
        "runs": {},
    }
    with tempfile.TemporaryDirectory() as logs:
        for run in RUNS:
            server = ServerProcess(impl, {**ECHO, **QUIET, **run.env}, Path(logs)).start()
            started = time.monotonic()
            try:
                results = fuzz_in_child(f"{server.ws_url}/ws/echo", run)
            finally:
                server.stop()
            seconds = time.monotonic() - started
            print(f"{impl.name:<10} {run.name:<8} {len(results['cases'])} cases in {seconds:.0f} s", flush=True)
            data["runs"][run.name] = {
                "title": run.title,
                "settings": {**ECHO, **run.env},
                "selection": list(run.cases or ["*"]),
                "seconds": round(seconds, 1),
                "request": results["request"],
                "serverLogProblems": problems(server.log()),
                "cases": results["cases"],
            }
    return data


def problems(log: str) -> list[str]:
    """Log lines that SPEC.md §15 rules out: a traceback, or anything logged as an error."""
    return [line for line in log.splitlines() if "Traceback" in line or re.match(r"(ERROR|CRITICAL)\b", line)]


def dump(data: dict[str, Any]) -> str:
    """JSON with one case per line, so that a new run's diff shows which cases changed."""
    lines: dict[str, str] = {}
    for run in data["runs"].values():
        for i, case in enumerate(run["cases"]):
            lines[key := f"@case{len(lines)}@"] = json.dumps(case, ensure_ascii=False)
            run["cases"][i] = key
    text = json.dumps(data, indent=1, ensure_ascii=False)
    for key, line in lines.items():
        text = text.replace(f'"{key}"', line, 1)
    return text + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--stack", action="append", choices=list(IMPLEMENTATIONS), help="run only this chapter (repeatable)"
    )
    parser.add_argument("--report-only", action="store_true", help="rewrite docs/autobahn.md's tables, run nothing")
    # The child process that runs kosoku (see fuzz_in_child).
    parser.add_argument("--fuzz", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--limit", type=float, default=600, help=argparse.SUPPRESS)
    parser.add_argument("--case", action="append", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fuzz:
        try:
            args.out.write_text(json.dumps(asyncio.run(fuzz(args.fuzz, args.case, args.limit))))
        except TimeoutError:
            print(f"  the cases did not finish within {args.limit:.0f} s", flush=True)
            return TIMED_OUT
        return 0
    RESULTS.mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        started = time.monotonic()
        for name in args.stack or list(IMPLEMENTATIONS):
            (RESULTS / f"{name}.json").write_text(dump(run_stack(IMPLEMENTATIONS[name])))
        print(f"all runs took {time.monotonic() - started:.0f} s")
    return report()


def report() -> int:
    """Rewrite docs/autobahn.md's tables from the saved results; say what a reader of the page must look at."""
    data = load()
    fix_doc(REPORT)
    for name, stack_data in data.items():
        print(f"{name:<10} " + cell(counts(stack_data["runs"]["default"]["cases"])))
    _, unexplained = explain(data)
    missing = sorted(set(BLOCKS) - {name for name, _, _ in blocks(REPORT)})
    print(f"wrote the tables of {REPORT.relative_to(REPO)}")
    if unexplained:
        print(f"{len(unexplained)} cases that are not OK fall under no cause: see the page's 'Not explained yet'")
    if missing:
        print(f"{REPORT.relative_to(REPO)} has no block {', '.join(missing)}: add them where they belong")
    return 1 if unexplained or missing else 0


if __name__ == "__main__":
    sys.exit(main())
