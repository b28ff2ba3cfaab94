"""The tables of docs/autobahn.md, made from the saved results (docs/autobahn/results/*.json) for docs/snippets.py."""

from __future__ import annotations

import fnmatch
import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from tests.implementations import IMPLEMENTATIONS

RESULTS = Path(__file__).resolve().parent / "results"

Chapter = dict[str, Any]  # one chapter's results file, as docs/autobahn/run.py writes it
Results = dict[str, Chapter]  # the chapter's name -> its results
Case = dict[str, Any]  # one case's verdict, as kosoku gives it (run.py's case_json)

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
RUN_LABELS = {"default": "default", "16mib": "16 MiB"}  # the runs' names in run.py, as the page calls them
VERDICTS = ("OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED", "ERROR")
DASH = "\u2013"  # en dash, for ranges of cases
EMPTY_MESSAGE_CASES = {"1.1.1", "6.1.1", "6.1.2", "9.7.1"}  # the cases whose messages are empty


# ---------------------------------------------------------------------------------------------------------------
# Causes: every case that is not OK must fall under one. docs/autobahn.md explains each under its own heading,
# above the block ``autobahn-cases-KEY`` that lists its cases.


@dataclass(frozen=True)
class Cause:
    key: str
    short: str  # a few words, for the list of what is left once the endpoint's rules are set aside
    matches: Callable[[str, Case], bool]  # (chapter, case)
    endpoint: bool = False  # the echo endpoint's own rules or the course's settings, not the library


def in_cases(case: Case, *globs: str) -> bool:
    return any(fnmatch.fnmatchcase(case["id"], glob) for glob in globs)


CAUSES = (
    Cause(
        "binary",
        "binary messages refused, 1003",
        lambda stack, case: case.get("remoteCloseCode") == 1003,
        endpoint=True,
    ),
    Cause(
        "empty",
        "empty messages never echoed",
        lambda stack, case: stack == "channels" and case["id"] in EMPTY_MESSAGE_CASES,
    ),
    Cause(
        "716",
        "informational, 1009 on 256 KiB",
        lambda stack, case: case["id"] == "7.1.6" and case["behavior"] == "INFORMATIONAL",
        endpoint=True,
    ),
    Cause(
        "limit",
        "above 64 KiB, 1009",
        lambda stack, case: (
            case.get("remoteCloseCode") == 1009 and "fragments" not in (case.get("remoteCloseReason") or "")
        ),
        endpoint=True,
    ),
    Cause(
        "fragments",
        "more than 4096 fragments refused",
        lambda stack, case: "fragments" in (case.get("remoteCloseReason") or ""),
    ),
    Cause(
        "race",
        "NON-STRICT: timing",
        lambda stack, case: case["behavior"] == "NON-STRICT" and in_cases(case, "3.*", "4.*", "5.*"),
    ),
    Cause(
        "utf8",
        "NON-STRICT: UTF-8 checked per message",
        lambda stack, case: case["behavior"] == "NON-STRICT" and in_cases(case, "6.4.*"),
    ),
    Cause("715", "close inside a fragmented message answered with 1002", lambda stack, case: case["id"] == "7.1.5"),
    Cause(
        "713",
        "informational: undefined close codes",
        lambda stack, case: case["behavior"] == "INFORMATIONAL" and in_cases(case, "7.13.*"),
    ),
    Cause(
        "deflate",
        "no compression",
        lambda stack, case: case["behavior"] == "UNIMPLEMENTED" and in_cases(case, "12.*", "13.*"),
        endpoint=True,
    ),
)

Found = dict[str, dict[str, dict[str, list[str]]]]  # cause key -> chapter -> run -> case ids
Unexplained = list[tuple[str, str, Case]]  # (chapter, run, case)


def not_ok(case: Case) -> bool:
    return bool(case["behavior"] != "OK" or case["behaviorClose"] not in ("OK", "INFORMATIONAL"))


def explain(data: Results) -> tuple[Found, Unexplained]:
    """Sort every case that is not OK under its cause (the first that matches); return the rest apart."""
    found: Found = {}
    unexplained: Unexplained = []
    for stack, stack_data in data.items():
        for run_name, run in stack_data["runs"].items():
            for case in filter(not_ok, run["cases"]):
                cause = next((cause for cause in CAUSES if cause.matches(stack, case)), None)
                if cause is None:
                    unexplained.append((stack, run_name, case))
                else:
                    found.setdefault(cause.key, {}).setdefault(stack, {}).setdefault(run_name, []).append(case["id"])
    return found, unexplained


# ---------------------------------------------------------------------------------------------------------------
# Reading the results, and writing them in cells


def load() -> Results:
    """The saved results, in the order of tests/implementations.py."""
    data = {
        name: json.loads(path.read_text()) for name in IMPLEMENTATIONS if (path := RESULTS / f"{name}.json").exists()
    }
    if not data:
        raise SystemExit(f"no results in {RESULTS}: run `make autobahn` first")
    return data


def default_cases(data: Results) -> dict[str, list[Case]]:
    return {stack: stack_data["runs"]["default"]["cases"] for stack, stack_data in data.items()}


def case_order(data: Results) -> list[str]:
    """The case ids in the suite's order (the first chapter's default run has them all)."""
    return [case["id"] for case in next(iter(default_cases(data).values()))]


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


def counts(cases: Iterable[Case]) -> Counter[str]:
    return Counter(case["behavior"] for case in cases)


def cell(counter: Counter[str]) -> str:
    return " · ".join(f"{counter[v]} {v}" for v in VERDICTS if counter[v]) or DASH


def section_of(case_id: str) -> str:
    return case_id.split(".")[0]


def row(cells: Iterable[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def header(columns: list[str], aligns: list[str]) -> list[str]:
    """A table's first two lines: its column titles, and each column's alignment (``---`` or ``---:``)."""
    return [row(columns), row(aligns)]


# ---------------------------------------------------------------------------------------------------------------
# Blocks


def sections() -> list[str]:
    """What Autobahn tests: its sections, and how many cases each has."""
    order = case_order(load())
    per_section = Counter(section_of(case_id) for case_id in order)
    lines = header(["section", "what it checks", "cases"], ["---"] * 3)
    lines += [row([f"{section}.x", title, str(per_section[section])]) for section, title in SECTIONS.items()]
    return [*lines, row(["all", "", str(len(order))])]


def runs() -> list[str]:
    """How it was run, per chapter: the packages, the runs and their times, what the servers' logs held."""
    data = load()
    facts: dict[str, Callable[[Chapter], str]] = {"packages": packages, "runner": runner}
    for number, (name, run) in enumerate(next(iter(data.values()))["runs"].items(), 1):
        globs = run["selection"]
        selection = "all cases" if globs == ["*"] else ", ".join(f"`{glob}`" for glob in globs)
        facts[f"run {number}, *{run['title']}*: {selection}; took"] = partial(seconds, name)
    facts["`Origin` header sent"] = origin
    facts["tracebacks and errors logged"] = logged
    facts["cases closed with 1011 (7.7.x aside: there it repeats the client's code)"] = internal_errors
    lines = header(["", *data], ["---"] * (1 + len(data)))
    return lines + [row([label, *map(fact, data.values())]) for label, fact in facts.items()]


def packages(chapter: Chapter) -> str:
    """The versions of the packages that speak WebSocket for the chapter."""
    return ", ".join(f"{name} {version}" for name, version in chapter["versions"].items() if name != "kosoku")


def runner(chapter: Chapter) -> str:
    return f"kosoku {chapter['versions']['kosoku']}, Python {chapter['python']}"


def seconds(run: str, chapter: Chapter) -> str:
    return f"{chapter['runs'][run]['seconds']:.0f} s"


def origin(chapter: Chapter) -> str:
    """Whether kosoku's handshake requests had an Origin header (SPEC.md §4 checks it)."""
    lines = [line.lower() for run in chapter["runs"].values() for line in run["request"].splitlines()]
    return "yes" if any(line.startswith("origin:") for line in lines) else "no"


def logged(chapter: Chapter) -> str:
    """The server's log lines that SPEC.md §15 rules out (tracebacks, errors), counted."""
    count = sum(len(run["serverLogProblems"]) for run in chapter["runs"].values())
    return f"{count} lines (`serverLogProblems`)" if count else "none"


def internal_errors(chapter: Chapter) -> str:
    """The cases the server closed with 1011 of its own accord (in 7.7.x it repeats the code the client sent)."""
    cases = [case for run in chapter["runs"].values() for case in run["cases"]]
    count = sum(case["remoteCloseCode"] == 1011 and not in_cases(case, "7.7.*") for case in cases)
    return str(count) if count else "none"


def totals() -> list[str]:
    """The verdicts of the default run, counted."""
    default = default_cases(load())
    counted = [counts(cases) for cases in default.values()]
    lines = header(["verdict", *default], ["---", *["---:"] * len(default)])
    for verdict in VERDICTS:
        if any(counter[verdict] for counter in counted):
            lines.append(row([verdict, *(str(counter[verdict]) for counter in counted)]))
    return [*lines, row(["total", *(str(len(cases)) for cases in default.values())])]


def remaining() -> list[str]:
    """Per chapter, the causes that are not the echo endpoint's rules, with their cases (default run)."""
    data = load()
    found, _ = explain(data)
    order = case_order(data)
    lines = []
    for stack in data:
        items = "; ".join(
            f"{ranges(found[cause.key][stack]['default'], order)} ({cause.short})"
            for cause in CAUSES
            if not cause.endpoint and found.get(cause.key, {}).get(stack, {}).get("default")
        )
        lines.append(f"- **{stack}**: {items or 'nothing'}.")
    return lines


def by_section() -> list[str]:
    """The verdicts of the default run, per section."""
    data = load()
    default = default_cases(data)
    per_section = Counter(section_of(case_id) for case_id in case_order(data))
    lines = header(["section", "cases", *default], ["---", "---:", *["---"] * len(default)])
    for section, title in SECTIONS.items():
        cells = (cell(counts(c for c in cases if section_of(c["id"]) == section)) for cases in default.values())
        lines.append(row([f"{section}.x {title}", str(per_section[section]), *cells]))
    return lines


def limit_lifted() -> list[str]:
    """Section 9: the default run, then the run with the size limit lifted."""
    data = load()
    lines = header(["cases", "what", *data], ["---"] * (2 + len(data)))
    for sub, title in SUBSECTIONS_9.items():
        cells = []
        for stack_data in data.values():
            before = [c for c in stack_data["runs"]["default"]["cases"] if c["id"].startswith(sub + ".")]
            after = [c for c in stack_data["runs"]["16mib"]["cases"] if c["id"].startswith(sub + ".")]
            cells.append(cell(counts(before)) + (f" → {cell(counts(after))}" if after else ""))
        lines.append(row([f"{sub}.x", title, *cells]))
    return lines


def cause_cases(key: str) -> list[str]:
    """The cases that fall under one cause, per chapter and run, with their verdicts and the server's close codes."""
    data = load()
    found, _ = explain(data)
    order = case_order(data)
    lines = []
    for stack, by_run in found.get(key, {}).items():
        parts = [f"{ranges(ids, order)} ({RUN_LABELS[run]})" for run, ids in by_run.items()]
        cases = [c for run, ids in by_run.items() for c in data[stack]["runs"][run]["cases"] if c["id"] in ids]
        codes = ", ".join(sorted({str(c["remoteCloseCode"]) for c in cases})).replace("None", "none")
        lines.append(f"- **{stack}**: {'; '.join(parts)}: {cell(counts(cases))}; server's close code {codes}.")
    return lines or ["- No case falls under this cause any more: its section can go."]


def unexplained() -> list[str]:
    """The cases that are not OK and fall under no cause: nothing, until a new run brings some."""
    _, left = explain(load())
    if not left:
        return []
    lines = [
        "### Not explained yet",
        "",
        "These results are new since this page was written (a library upgrade?): look at them, then add a cause to "
        "`CAUSES` in `docs/autobahn/tables.py` and its section to this page.",
        "",
    ]
    for stack, run_name, case in left:
        lines.append(
            f"- **{stack}** {case['id']} ({run_name}): {case['behavior']} / {case['behaviorClose']}, close "
            f"{case.get('remoteCloseCode')} {case.get('remoteCloseReason') or ''}: {case.get('result', '')} "
            f"{case.get('resultClose', '')}"
        )
    return lines


BLOCKS: dict[str, Callable[[], list[str]]] = {
    "autobahn-sections": sections,
    "autobahn-runs": runs,
    "autobahn-totals": totals,
    "autobahn-remaining": remaining,
    "autobahn-by-section": by_section,
    "autobahn-limit-lifted": limit_lifted,
    **{f"autobahn-cases-{cause.key}": partial(cause_cases, cause.key) for cause in CAUSES},
    "autobahn-unexplained": unexplained,
}
