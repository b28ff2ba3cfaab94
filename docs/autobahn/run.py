"""Run the Autobahn TestSuite's RFC 6455 cases (with kosoku) against each chapter's /ws/echo; write docs/autobahn.md."""

from __future__ import annotations

import argparse
import asyncio
import fnmatch
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "docs" / "autobahn" / "results"
REPORT = REPO / "docs" / "autobahn.md"

STACKS = {
    "fastapi": "01_fastapi/server.py",
    "channels": "02_channels/server.py",
    "websockets": "03_websockets/server.py",
}
# The packages that speak WebSocket for each chapter (their versions go into the results and the report).
PACKAGES = {
    "fastapi": ("fastapi", "starlette", "uvicorn", "websockets"),
    "channels": ("channels", "daphne", "autobahn", "twisted"),
    "websockets": ("websockets",),
}
LIBRARY = {
    "fastapi": "uvicorn's `websockets-sansio` protocol (the websockets library's sans-I/O parser)",
    "channels": "daphne, whose WebSocket code is autobahn-python on Twisted",
    "websockets": "the websockets library's asyncio server",
}
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
SECTIONS = {
    "1": "Framing (text and binary, 0 B to 64 KiB)",
    "2": "Pings and pongs",
    "3": "Reserved bits",
    "4": "Opcodes",
    "5": "Fragmentation",
    "6": "UTF-8 handling",
    "7": "Close handling",
    "9": "Limits and performance",
    "10": "Miscellaneous (auto-fragmentation)",
    "12": "Compression (permessage-deflate), payloads",
    "13": "Compression (permessage-deflate), parameters",
}
SUBSECTIONS_9 = {
    "9.1": "one text message, 64 KiB to 16 MiB",
    "9.2": "one binary message, 64 KiB to 16 MiB",
    "9.3": "a 4 MiB text message in fragments of 64 B to 4 MiB",
    "9.4": "a 4 MiB binary message in fragments of 64 B to 4 MiB",
    "9.5": "a 1 MiB text message written in chops of 64 B to 2 KiB",
    "9.6": "a 1 MiB binary message written in chops of 64 B to 2 KiB",
    "9.7": "1000 text messages, 0 B to 4 KiB, one after the other",
    "9.8": "1000 binary messages, 0 B to 4 KiB, one after the other",
}
VERDICTS = ("OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED", "ERROR")
TIMED_OUT = 3  # the exit status of a child whose cases did not finish in time
DASH = "\u2013"  # en dash, for ranges of cases
EMPTY_MESSAGE_CASES = {"1.1.1", "6.1.1", "6.1.2", "9.7.1"}  # the cases whose messages are empty


# ---------------------------------------------------------------------------------------------------------------
# Running


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """One chapter on a free port, with the echo endpoint on; its output goes to a log file."""

    def __init__(self, stack: str, env: dict[str, str], log: Path) -> None:
        self.stack, self.port, self.log = stack, free_port(), log
        environ = {k: v for k, v in os.environ.items() if not k.startswith("CHAT_")}
        environ.update(
            CHAT_BENCH_ENDPOINTS="1",
            CHAT_HOST="127.0.0.1",
            CHAT_PORT=str(self.port),
            CHAT_SECRET=secrets.token_hex(32),  # unused by /ws/echo; set so the server does not warn
            CHAT_LOG_LEVEL="warning",  # no access log line per case
            PYTHONUNBUFFERED="1",
            **env,
        )
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, STACKS[stack]],
                cwd=REPO,
                env=environ,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 30
        while not self.healthy():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{stack} did not start:\n{log.read_text(errors='replace')}")
            time.sleep(0.1)

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)

    def problems(self) -> list[str]:
        """Log lines that SPEC.md §15 rules out: a traceback, or anything logged as an error."""
        lines = self.log.read_text(errors="replace").splitlines()
        return [line for line in lines if "Traceback" in line or re.match(r"(ERROR|CRITICAL)\b", line)]


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


def run_stack(stack: str) -> dict[str, Any]:
    """Every pass of the suite against one chapter; the server is started afresh for each."""
    versions = {name: metadata.version(name) for name in ("kosoku", *PACKAGES[stack])}
    data: dict[str, Any] = {
        "stack": stack,
        "server": STACKS[stack],
        "endpoint": "/ws/echo",
        "versions": versions,
        "python": sys.version.split()[0],
        "runs": {},
    }
    with tempfile.TemporaryDirectory() as logs:
        for run in RUNS:
            server = Server(stack, run.env, Path(logs) / f"{stack}-{run.name}.log")
            started = time.monotonic()
            try:
                results = fuzz_in_child(f"ws://127.0.0.1:{server.port}/ws/echo", run)
            finally:
                server.stop()
            seconds = time.monotonic() - started
            print(f"{stack:<10} {run.name:<8} {len(results['cases'])} cases in {seconds:.0f} s", flush=True)
            data["runs"][run.name] = {
                "title": run.title,
                "settings": {"CHAT_BENCH_ENDPOINTS": "1", **run.env},
                "selection": list(run.cases or ["*"]),
                "seconds": round(seconds, 1),
                "request": results["request"],
                "serverLogProblems": server.problems(),
                "cases": results["cases"],
            }
    return data


# ---------------------------------------------------------------------------------------------------------------
# Explaining: every case that is not OK must match one of these, or the report lists it as unexplained.


@dataclass(frozen=True)
class Why:
    key: str
    short: str  # a few words, for the totals
    title: str
    text: str
    matches: Callable[[str, dict[str, Any]], bool]
    summary: str = ""  # a bullet for "In short", shown only when the cause was found
    endpoint: bool = False  # the echo endpoint's own rules or the course's settings, not the library
    found: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # stack -> run -> case ids


def in_cases(case: dict[str, Any], *globs: str) -> bool:
    return any(fnmatch.fnmatchcase(case["id"], glob) for glob in globs)


EXPLANATIONS = (
    Why(
        "binary",
        "binary messages refused, 1003",
        "The echo endpoint refuses binary messages (close 1003): by design, not a protocol fault",
        "These cases send binary messages and expect them back. `/ws/echo` echoes text only: like the chat protocol "
        '(SPEC.md §13.2, §18) it closes the connection with 1003 ("unsupported data") on a binary message. The '
        "library received the message correctly and handed it to the application; the application chose to close. "
        'Autobahn expected an echo, saw the server close first, and says "failed by the wrong endpoint". RFC 6455 '
        "§7.4.1 defines 1003 for exactly this: an endpoint that cannot accept a type of data.",
        lambda stack, case: case.get("remoteCloseCode") == 1003,
        endpoint=True,
    ),
    Why(
        "empty",
        "empty messages never echoed",
        "daphne never sends an empty message (chapter 2 only): a real bug, in daphne's ASGI layer",
        "These cases send empty text messages (1.1.1, 6.1.1: one; 6.1.2: three empty fragments; 9.7.1: 1000 of them) "
        "and wait for the echoes. None comes back from chapter 2, so the cases end by timeout (9.7.1 costs a full "
        'minute). The consumer does call `self.send(text_data="")`, and Channels passes '
        '`{"type": "websocket.send", "text": ""}` on. But daphne (`daphne/ws_protocol.py`, `handle_reply`) '
        'tests `if message.get("text", None):`, and an empty string is false in Python, so the frame is silently '
        "dropped. The ASGI spec only says that one of `text` and `bytes` must be non-None; RFC 6455 allows "
        "empty messages; the message never even reaches autobahn-python. Any Channels application that echoes "
        "or forwards an empty string is hit (SPEC.md §18 already warns that daphne sends nothing for an empty "
        "frame).",
        lambda stack, case: stack == "channels" and case["id"] in EMPTY_MESSAGE_CASES,
        summary="**Chapter 2 has one real bug**, in daphne: an empty message that the application sends is silently "
        "dropped (1.1.1, 6.1.1, 6.1.2, 9.7.1). A Channels application cannot send an empty text or binary "
        "frame.",
    ),
    Why(
        "716",
        "informational, 1009 on 256 KiB",
        "7.1.6 is informational, and the 256 KiB message meets the 64 KiB limit",
        "7.1.6 sends a 256 KiB message, a small one, a close and a ping, back to back, and the RFC leaves the outcome "
        "open, so Autobahn only records it. With the default settings, every stack closes with 1009 (message too "
        "big) on the 256 KiB message before it gets to the close.",
        lambda stack, case: case["id"] == "7.1.6" and case["behavior"] == "INFORMATIONAL",
        endpoint=True,
    ),
    Why(
        "limit",
        "above 64 KiB, 1009",
        "Messages above CHAT_MAX_MESSAGE_BYTES are closed with 1009: expected",
        "With the default settings, a chapter accepts messages of at most 65536 bytes (SPEC.md §13.1) and closes "
        'the connection with 1009 ("message too big", RFC 6455 §7.4.1) on a bigger one. These 9.x cases send '
        "256 KiB to 16 MiB, in one frame or in fragments. Each library enforces the limit itself: uvicorn passes "
        "`ws_max_size` to the websockets parser, daphne sets autobahn's `maxMessagePayloadSize` and "
        "`maxFramePayloadSize`, chapter 3 passes `max_size`. Autobahn wants the echo and marks the case failed. "
        "The second run (limit raised to 16 MiB) shows what the libraries themselves do with these messages.",
        lambda stack, case: (
            case.get("remoteCloseCode") == 1009 and "fragments" not in (case.get("remoteCloseReason") or "")
        ),
        summary="1003 for binary messages and 1009 above 64 KiB are the course's choices (SPEC.md §13, §18), and the "
        "RFC's close codes for them. With the limit lifted, every library echoes messages of up to 16 MiB.",
        endpoint=True,
    ),
    Why(
        "fragments",
        "more than 4096 fragments refused",
        "websockets refuses a message of more than 4096 fragments (chapter 3 only): a library limit",
        "9.3.1 and 9.3.2 send a 4 MiB text message in 65536 fragments of 64 bytes and in 16384 fragments of 256 "
        "bytes (9.4.1 and 9.4.2: the same, binary). Chapter 3's websockets 17 closes with 1009 \"too many "
        'fragments", even with the size limit raised: its asyncio message assembler '
        "(`websockets/asyncio/messages.py`) stops at `MAX_FRAGMENTS` fragments per message, 4096 unless the "
        "`WEBSOCKETS_MAX_FRAGMENTS` environment variable says otherwise. It protects the server from messages made "
        "of many tiny frames, which cost far more to reassemble than their size suggests. 9.3.3 (4096 fragments "
        "of 1 KiB) passes. uvicorn uses the same parser but assembles messages itself, without that cap, so "
        "chapter 1 passes these cases. RFC 6455 sets no limit on fragments, and 1009 is the right code for a "
        "message an endpoint will not take. (This is `/ws/echo`, which calls `recv()`. The chat endpoint reads with "
        "`recv_streaming()`, which has no such cap, so that only `max_size` bounds a chat message, SPEC.md §13.1.)",
        lambda stack, case: "fragments" in (case.get("remoteCloseReason") or ""),
        summary="Chapter 3's websockets refuses messages of more than 4096 fragments (9.3.1, 9.3.2, 9.4.1, 9.4.2): a "
        "deliberate limit of the library, which `WEBSOCKETS_MAX_FRAGMENTS` can raise.",
    ),
    Why(
        "race",
        "NON-STRICT: timing",
        "The library fails the connection before the application echoes the previous message (NON-STRICT)",
        "These cases send a good text message and then, without waiting, a broken frame: a reserved bit set (3.x), "
        "a reserved opcode (4.x), or a continuation frame with nothing to continue (5.15). Autobahn hopes to get the "
        "echo of the good message first (OK) and accepts the connection being failed straight away (NON-STRICT). "
        "Every stack does fail it at once with 1002 (protocol error), as RFC 6455 requires. The echo is lost "
        "when the library reads the broken frame and fails the connection itself before the application task has "
        "had its turn to send the echo. Who wins depends on how the bytes happen to arrive (in one read or in "
        "several) and on scheduling, so which of these cases come out OK and which NON-STRICT changes from run to "
        "run: compare the lists below with a new run's. The websockets project lists the same NON-STRICT results "
        "in its own compliance notes. This is timing, not a fault.",
        lambda stack, case: case["behavior"] == "NON-STRICT" and in_cases(case, "3.*", "4.*", "5.*"),
    ),
    Why(
        "utf8",
        "NON-STRICT: UTF-8 checked per message",
        "Invalid UTF-8 is noticed at the end of the message, not in the middle (NON-STRICT)",
        "6.4.1 to 6.4.4 send a text message in parts, a second apart; the second part makes it invalid UTF-8. "
        'Autobahn hopes the server fails the connection as soon as that part arrives ("fail fast"), and accepts it '
        "failing once the message is complete. Both uvicorn and websockets join the fragments and decode the whole "
        "message at the end (`data.decode()` in uvicorn's `send_receive_event_to_app`, in websockets' asyncio "
        "`Assembler.get`), so they close with 1007 (invalid data) a second later: NON-STRICT, still conformant. "
        "daphne's autobahn validates UTF-8 incrementally, frame by frame, and passes (OK).",
        lambda stack, case: case["behavior"] == "NON-STRICT" and in_cases(case, "6.4.*"),
    ),
    Why(
        "715",
        "close inside a fragmented message answered with 1002",
        "7.1.5: a close in the middle of a fragmented message is answered with 1002, not 1000",
        "7.1.5 sends the first fragment of a text message, then a close frame (1000), then the last fragment. RFC "
        "6455 allows control frames, close included, between fragments (§5.4), so Autobahn expects the server to "
        "answer the close with 1000. The websockets sans-I/O protocol (`websockets/protocol.py`, `recv_frame`) "
        'raises `ProtocolError("incomplete fragmented message")` when a close arrives while a message is '
        "unfinished, and answers with 1002 (protocol error). Chapters 1 and 3 both use that protocol code "
        "(uvicorn's `websockets-sansio` is built on it), so both get this result; daphne answers 1000. The "
        'websockets maintainers document this case: the RFC says the endpoint "typically echos the status code '
        'it received" (§5.5.1), which is not a MUST. The connection still closes cleanly. A deliberate choice, '
        "not a bug.",
        lambda stack, case: case["id"] == "7.1.5",
        summary="Chapters 1 and 3 share the websockets library's parser, so they share its choices: 1002 for a close "
        "in the middle of a fragmented message (7.1.5) and UTF-8 checked once the message is complete (6.4.x, "
        "NON-STRICT).",
    ),
    Why(
        "713",
        "informational: undefined close codes",
        "7.13.x: close codes 5000 and 65535 are undefined, so Autobahn only records the answer",
        "7.13.1 and 7.13.2 send a close frame with code 5000 and 65535, which RFC 6455 does not define (§7.4.2). "
        'Every chapter answers with a close frame 1002 "invalid status code", and Autobahn only records the answer. '
        "Left to itself, daphne's autobahn would write that close frame and then take the client's close as the "
        "answer to its own and abort the TCP connection at once (`onCloseFrame` calls `dropConnection(abort=True)`): "
        "its close frame would never leave Twisted's buffer, and the client would see a reset. Chapter 2's "
        "`ChatWebSocketProtocol.dropConnection` lets the frame leave first (SPEC.md §15).",
        lambda stack, case: case["behavior"] == "INFORMATIONAL" and in_cases(case, "7.13.*"),
    ),
    Why(
        "deflate",
        "no compression",
        "Compression is off in every chapter, so 12.x and 13.x are UNIMPLEMENTED: expected",
        "The 12.x and 13.x cases offer the permessage-deflate extension (RFC 7692) and test compressed messages. "
        "Every chapter turns compression off (uvicorn `ws_per_message_deflate=False`; daphne leaves autobahn's "
        "default, which declines every offer; chapter 3 `compression=None`), to save memory per connection. The "
        "server accepts the connection without the extension, so Autobahn records UNIMPLEMENTED and closes "
        "normally; the 216 cases take about a second. (Case 3.1 checks the other side: a frame with the "
        "compression bit, RSV1, set although nothing was negotiated is refused with 1002 by every stack: OK.)",
        lambda stack, case: case["behavior"] == "UNIMPLEMENTED" and in_cases(case, "12.*", "13.*"),
        endpoint=True,
    ),
)


def not_ok(case: dict[str, Any]) -> bool:
    return bool(case["behavior"] != "OK" or case["behaviorClose"] not in ("OK", "INFORMATIONAL"))


def explain(data: dict[str, dict[str, Any]]) -> tuple[list[Why], list[tuple[str, str, dict[str, Any]]]]:
    """Sort every case that is not OK under its explanation; return the explanations used and the rest."""
    whys = [
        Why(why.key, why.short, why.title, why.text, why.matches, why.summary, why.endpoint) for why in EXPLANATIONS
    ]
    unexplained: list[tuple[str, str, dict[str, Any]]] = []
    for stack, stack_data in data.items():
        for run_name, run in stack_data["runs"].items():
            for case in filter(not_ok, run["cases"]):
                why = next((why for why in whys if why.matches(stack, case)), None)
                if why is None:
                    unexplained.append((stack, run_name, case))
                else:
                    why.found.setdefault(stack, {}).setdefault(run_name, []).append(case["id"])
    return [why for why in whys if why.found], unexplained


# ---------------------------------------------------------------------------------------------------------------
# Reporting


def case_key(case_id: str) -> list[int]:
    return [int(part) for part in case_id.split(".")]


def ranges(ids: Iterable[str], order: list[str]) -> str:
    """``1.2.1, 1.2.2, 1.2.3, 9.8.1`` as ``1.2.1-1.2.3, 9.8.1`` (en dash): cases that follow each other in ``order``."""
    position = {case_id: i for i, case_id in enumerate(order)}
    chosen = sorted(set(ids), key=lambda case_id: position.get(case_id, len(order)))
    parts: list[list[str]] = []
    for case_id in chosen:
        if parts and position.get(case_id, -9) == position.get(parts[-1][-1], -9) + 1:
            parts[-1].append(case_id)
        else:
            parts.append([case_id])
    return ", ".join(p[0] if len(p) == 1 else f"{p[0]}{DASH}{p[-1]}" for p in parts)


def counts(cases: Iterable[dict[str, Any]]) -> Counter[str]:
    return Counter(case["behavior"] for case in cases)


def cell(counter: Counter[str]) -> str:
    return " · ".join(f"{counter[v]} {v}" for v in VERDICTS if counter[v]) or DASH


def section_of(case_id: str) -> str:
    return case_id.split(".")[0]


def render(data: dict[str, dict[str, Any]]) -> tuple[str, int]:
    """docs/autobahn.md from the results; also the number of non-OK cases that no explanation covers."""
    stacks = [stack for stack in STACKS if stack in data]
    first = data[stacks[0]]
    default = {stack: data[stack]["runs"]["default"]["cases"] for stack in stacks}
    order = [case["id"] for case in default[stacks[0]]]
    whys, unexplained = explain(data)
    lines: list[str] = []
    add = lines.append

    add("# RFC 6455 conformance of the three chapters (Autobahn TestSuite)")
    add("")
    add("<!-- Generated by docs/autobahn/run.py from docs/autobahn/results/*.json: edit the script, not this file. -->")
    add("")
    add(
        "Each chapter speaks WebSocket through a different library. This page checks how closely each one follows "
        "the WebSocket protocol itself (RFC 6455), below the chat protocol, with the standard conformance test: the "
        "[Autobahn TestSuite](https://github.com/crossbario/autobahn-testsuite)."
    )
    add("")
    add("## What Autobahn tests")
    add("")
    add(
        f"Autobahn is a fuzzing client: it opens one connection per test case ({len(order)} cases), sends frames "
        "(many of them broken on purpose) to an echo server, and checks what comes back and how the connection "
        "closes. The sections:"
    )
    add("")
    add("| section | what it checks | cases |")
    add("| --- | --- | --- |")
    per_section = Counter(section_of(case_id) for case_id in order)
    for section, title in SECTIONS.items():
        add(f"| {section}.x | {title} | {per_section[section]} |")
    add("")
    add("(There is no section 8 or 11 in the suite.) Each case gets a verdict:")
    add("")
    add("- **OK**: the server did exactly what the case expects.")
    add(
        "- **NON-STRICT**: the server did something the RFC allows, but not the strictest choice (for example, it "
        "noticed an error a little later than it could have). Still conformant."
    )
    add("- **INFORMATIONAL**: the RFC leaves the behaviour open; Autobahn only records it.")
    add("- **UNIMPLEMENTED**: the server does not offer the optional feature the case tests (here: compression).")
    add(
        "- **FAILED**: the server did not do what the case expects. Below, each one is explained: most are the echo "
        "endpoint's own rules, not protocol faults."
    )
    add("")

    add("## How it was run")
    add("")
    versions = {name: version for stack in stacks for name, version in data[stack]["versions"].items()}
    add(
        f"- **Runner**: [kosoku](https://pypi.org/project/kosoku/) {versions['kosoku']}, a maintained Python 3 "
        "runner (native code, written in Rust) that drives the Autobahn TestSuite's own case files, translated to "
        "Python 3, and gives the same verdicts. The original package, `autobahntestsuite` (25.10.1 on PyPI), is "
        "still Python 2.7 code pinned to autobahn 0.10.9 (its usual form is a Docker image), so it cannot run in "
        "the course's virtualenv. kosoku is used through its Python "
        f"API (`run_fuzzingclient`). Python {first['python']}."
    )
    add(
        "- **Target**: each chapter's `/ws/echo` (SPEC.md §18, on with `CHAT_BENCH_ENDPOINTS=1`), started on a "
        "free port on 127.0.0.1 and stopped after each run. `/ws/echo` sends back every text message and closes "
        "the connection with 1003 on a binary one."
    )
    for stack in stacks:
        pins = ", ".join(f"{name} {data[stack]['versions'][name]}" for name in PACKAGES[stack])
        add(f"  - **{stack}** (`{STACKS[stack]}`): {LIBRARY[stack]}. {pins}.")
    origin = any(
        "origin:" in line.lower() for stack in stacks for line in data[stack]["runs"]["default"]["request"].splitlines()
    )
    add(
        "- **Handshake**: "
        + (
            "kosoku sends an `Origin` header: check it against SPEC.md §4 if chapter 3 refuses the handshakes."
            if origin
            else "kosoku sends no `Origin` header, so chapter 3's `origins` check (SPEC.md §4: a request without "
            "`Origin` passes) lets it in."
        )
        + " Its handshake request is in the results files (`request`)."
    )
    add("- **Two runs per chapter**:")
    for run in RUNS:
        selection = "all cases" if run.cases is None else ", ".join(f"`{glob}`" for glob in run.cases)
        seconds = " / ".join(f"{data[stack]['runs'][run.name]['seconds']:.0f} s" for stack in stacks)
        add(f"  1. *{run.title}*: {selection}; took {seconds} ({' / '.join(stacks)}).")
    add(
        "  The first run is the chapters as they ship: the size limit is part of the result. The second run lifts "
        "the limit to the largest message Autobahn sends (16 MiB), so that the 9.x cases test the libraries "
        "rather than the setting. Nothing is excluded: 12.x and 13.x (compression) run too and end at once, as "
        "UNIMPLEMENTED, since every chapter has compression off. One case at a time (kosoku's default), so that "
        "the cases cannot disturb each other."
    )
    add(
        "- **Everything else** at its default; the servers log at `warning` level, and the runner checks their logs "
        "for tracebacks and errors (SPEC.md §15)."
    )
    problems = {stack: sum(len(run["serverLogProblems"]) for run in data[stack]["runs"].values()) for stack in stacks}
    if any(problems.values()):
        add(
            "  **Problems found in the server logs**: "
            + ", ".join(f"{s}: {n} lines" for s, n in problems.items() if n)
            + " (see `serverLogProblems`)."
        )
    else:
        add("  None was found: no case made a server log a traceback or an error, nor close with 1011.")
    add(
        "- **Run it**: `make autobahn` (`IMPL=channels` for one chapter), about 2 minutes; or "
        "`.venv/bin/python docs/autobahn/run.py --report-only` to rewrite this page from the saved results, which "
        "are in `docs/autobahn/results/<stack>.json`."
    )
    add("")

    add("## Results")
    add("")
    add("### Totals (default settings)")
    add("")
    add("| verdict | " + " | ".join(stacks) + " |")
    add("| --- |" + " ---: |" * len(stacks))
    totals = {stack: counts(default[stack]) for stack in stacks}
    for verdict in VERDICTS:
        if any(totals[stack][verdict] for stack in stacks):
            add(f"| {verdict} | " + " | ".join(str(totals[stack][verdict]) for stack in stacks) + " |")
    add("| total | " + " | ".join(str(len(default[stack])) for stack in stacks) + " |")
    add("")
    add(
        "Not every FAILED case is a protocol fault: most follow from the echo endpoint's own rules (binary "
        "messages refused, 64 KiB limit), explained below. Leaving those aside, what remains:"
    )
    add("")
    for stack in stacks:
        items = "; ".join(
            f"{ranges(why.found[stack]['default'], order)} ({why.short})"
            for why in whys
            if not why.endpoint and why.found.get(stack, {}).get("default")
        )
        add(f"- **{stack}**: {items or 'nothing'}.")
    add("")
    add("### By section (default settings)")
    add("")
    add("| section | cases | " + " | ".join(stacks) + " |")
    add("| --- | ---: |" + " --- |" * len(stacks))
    for section, title in SECTIONS.items():
        row = [cell(counts(c for c in default[stack] if section_of(c["id"]) == section)) for stack in stacks]
        add(f"| {section}.x {title} | {per_section[section]} | " + " | ".join(row) + " |")
    add("")
    add("### Section 9 with the size limit lifted")
    add("")
    add(
        f"9.1 to 9.6 again, with CHAT_MAX_MESSAGE_BYTES={SIXTEEN_MIB}. Each cell: the default run → this run. "
        "(Autobahn also times these cases; the times are in the results files, `durationMs`. They are not "
        "compared here: the benchmarks in `benchmarks/` measure speed properly.)"
    )
    add("")
    add("| cases | what | " + " | ".join(stacks) + " |")
    add("| --- | --- |" + " --- |" * len(stacks))
    for sub, title in SUBSECTIONS_9.items():
        row = []
        for stack in stacks:
            before = [c for c in default[stack] if c["id"].startswith(sub + ".")]
            after = [c for c in data[stack]["runs"]["16mib"]["cases"] if c["id"].startswith(sub + ".")]
            text = cell(counts(before)) + (f" → {cell(counts(after))}" if after else "")
            row.append(text)
        add(f"| {sub}.x | {title} | " + " | ".join(row) + " |")
    add("")

    add("## Every case that is not OK, explained")
    add("")
    add(
        "Grouped by cause. The case numbers are Autobahn's; kosoku's description of each case is in the results "
        'files. "Default" is the first run, "16 MiB" the second.'
    )
    add("")
    for why in whys:
        add(f"### {why.title}")
        add("")
        add(why.text)
        add("")
        for stack in stacks:
            found = why.found.get(stack, {})
            parts = [
                f"{ranges(ids, order)} ({'default' if run == 'default' else '16 MiB'})" for run, ids in found.items()
            ]
            if parts:
                codes = sorted(
                    {
                        str(c["remoteCloseCode"])
                        for run, ids in found.items()
                        for c in data[stack]["runs"][run]["cases"]
                        if c["id"] in ids
                    }
                )
                verdicts = Counter(
                    c["behavior"]
                    for run, ids in found.items()
                    for c in data[stack]["runs"][run]["cases"]
                    if c["id"] in ids
                )
                add(
                    f"- **{stack}**: "
                    + "; ".join(parts)
                    + f": {cell(verdicts)}; server's close code "
                    + ", ".join(codes).replace("None", "none")
                    + "."
                )
        add("")
    if unexplained:
        add("### Not explained yet")
        add("")
        add(
            "These results are new since this page was written (a library upgrade?): look at them, then add an "
            "explanation to `docs/autobahn/run.py`."
        )
        add("")
        for stack, run_name, case in unexplained:
            add(
                f"- **{stack}** {case['id']} ({run_name}): {case['behavior']} / {case['behaviorClose']}, close "
                f"{case.get('remoteCloseCode')} {case.get('remoteCloseReason') or ''}: {case.get('result', '')} "
                f"{case.get('resultClose', '')}"
            )
        add("")

    add("## In short")
    add("")
    if not unexplained:
        add(
            "- Every case that is not OK has a cause above. Outside them, all three libraries frame, fragment, "
            "answer pings, check UTF-8 and close as RFC 6455 requires."
        )
    add("".join(f"- {why.summary}\n" for why in whys if why.summary).rstrip("\n"))
    add("")
    return "\n".join(lines), len(unexplained)


# ---------------------------------------------------------------------------------------------------------------


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
    parser.add_argument("--stack", action="append", choices=list(STACKS), help="run only this chapter (repeatable)")
    parser.add_argument("--report-only", action="store_true", help="rewrite docs/autobahn.md from the saved results")
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
        for stack in args.stack or list(STACKS):
            path = RESULTS / f"{stack}.json"
            path.write_text(dump(run_stack(stack)))
        print(f"all runs took {time.monotonic() - started:.0f} s")
    data = {stack: json.loads(path.read_text()) for stack in STACKS if (path := RESULTS / f"{stack}.json").exists()}
    if not data:
        print("no results yet: run without --report-only first", file=sys.stderr)
        return 2
    report, unexplained = render(data)
    REPORT.write_text(report)
    for stack, stack_data in data.items():
        print(f"{stack:<10} " + cell(counts(stack_data["runs"]["default"]["cases"])))
    print(
        f"wrote {REPORT.relative_to(REPO)}" + (f"; {unexplained} non-OK cases are not explained" if unexplained else "")
    )
    return 1 if unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
