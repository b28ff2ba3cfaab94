"""Keeps the code shown in the course's Markdown files equal to the code on disk: check, or fix with --fix.

An excerpt is a caption naming a file and a line range, followed by a fenced code block::

    [`01_fastapi/server.py`, lines 57-75](server.py#L57-L75)
    ```python
    ...exactly those lines (common indentation removed)...
    ```

The path in the caption is relative to the repository's root; the link, relative to the Markdown file.
A generated block sits between ``<!-- begin: NAME -->`` and ``<!-- end: NAME -->``; GENERATORS make them
(docs/autobahn/tables.py those of docs/autobahn.md, from the saved results of its runs).

``python docs/snippets.py`` lists every stale excerpt and block (exit 1 if any). ``--fix`` rewrites them: a
block is regenerated, and an excerpt whose code moved is pointed at its new lines; an excerpt whose code
changed is left for you to edit (run it again after), since only you know which lines you meant to show.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from docs.autobahn.tables import BLOCKS as AUTOBAHN_BLOCKS

ROOT = Path(__file__).resolve().parent.parent
SKIP_DIRS = {"venv", "node_modules", "test-artifacts", "results"}  # and every folder whose name starts with "."
CAPTION_RE = re.compile(r"^\[`(?P<path>[^`]+)`, lines (?P<start>\d+)-(?P<end>\d+)\]\((?P<href>[^)]*)\):?$")
CAPTION = "[`path/from/the/root.py`, lines 10-20](link/relative/to/the/doc.py#L10-L20), alone on its line"
FENCE_RE = re.compile(r"^```[\w-]*$")
BEGIN_RE = re.compile(r"^<!-- begin: (?P<name>[\w-]+) -->$")


@dataclass
class Excerpt:
    doc: Path
    line: int  # the caption's index in the doc's lines
    path: str
    start: int
    end: int
    href: str
    code: list[str]  # the block's lines, as shown

    @property
    def where(self) -> str:
        return f"{self.doc.relative_to(ROOT)}:{self.line + 1}"

    def problem(self) -> str | None:
        """What is wrong with this excerpt, or None."""
        source = ROOT / self.path
        if not source.is_file():
            return f"{self.path} does not exist"
        if self.href != link(self.doc, self.path, self.start, self.end):
            return f"the link should be {link(self.doc, self.path, self.start, self.end)}"
        lines = source.read_text().splitlines()
        if not 1 <= self.start <= self.end <= len(lines):
            return f"{self.path} has {len(lines)} lines, not {self.start}-{self.end}"
        if shown(lines[self.start - 1 : self.end]) != self.code:
            return f"the code differs from {self.path}, lines {self.start}-{self.end}"
        return None

    def relocate(self) -> tuple[int, int] | None:
        """Where the shown code is now, if it is in the file exactly once."""
        source = ROOT / self.path
        if not source.is_file() or not self.code:
            return None
        lines = source.read_text().splitlines()
        size = len(self.code)
        found = [i + 1 for i in range(len(lines) - size + 1) if shown(lines[i : i + size]) == self.code]
        return (found[0], found[0] + size - 1) if len(found) == 1 else None


def shown(lines: list[str]) -> list[str]:
    """Lines as an excerpt shows them: their common indentation removed."""
    return textwrap.dedent("\n".join(lines)).splitlines()


def link(doc: Path, path: str, start: int, end: int) -> str:
    return f"{os.path.relpath(ROOT / path, doc.parent)}#L{start}-L{end}"


def caption(doc: Path, path: str, start: int, end: int) -> str:
    return f"[`{path}`, lines {start}-{end}]({link(doc, path, start, end)})"


def documents() -> Iterator[Path]:
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
        for name in sorted(files):
            if name.endswith(".md"):
                yield Path(folder, name)


def excerpts(doc: Path) -> Iterator[Excerpt]:
    lines = doc.read_text().split("\n")
    where = doc.relative_to(ROOT)
    for i, text in outside_code(lines):
        match = CAPTION_RE.match(text)
        if match is None:
            if text.lstrip().startswith("[`") and ", lines " in text:
                raise SystemExit(f"{where}:{i + 1}: this looks like an excerpt's caption but isn't one: {CAPTION}")
            continue
        if i + 1 >= len(lines) or not FENCE_RE.match(lines[i + 1]):
            raise SystemExit(f"{where}:{i + 1}: a caption must be followed by a ``` code block")
        end = next((j for j in range(i + 2, len(lines)) if lines[j] == "```"), None)
        if end is None:
            raise SystemExit(f"{where}:{i + 2}: this code block never ends")
        yield Excerpt(doc, i, match["path"], int(match["start"]), int(match["end"]), match["href"], lines[i + 2 : end])


def outside_code(lines: list[str]) -> Iterator[tuple[int, str]]:
    """(index, line) of every line that is not inside a fenced code block."""
    fenced = False
    for i, text in enumerate(lines):
        if text.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            yield i, text


# Generated blocks


# Each chapter's modules that work around its framework (what SPEC.md needs and the framework lacks, each fix a
# subclass of the framework's own); the chapter's other modules are its glue.
WORKAROUNDS = {
    "01_fastapi": {"uvicorn_fixes.py"},
    "02_channels": {"daphne_fixes.py", "chat/channels_fixes.py", "chat/dispatch.py", "chat/layers.py"},
    "03_websockets": {"connection.py"},
}


def glue_lines() -> list[str]:
    """The chapters' code, counted: every Python file that is not a test or a benchmark baseline, as glue or as
    workarounds (WORKAROUNDS)."""
    chapters = [("1: FastAPI", "01_fastapi"), ("2: Channels", "02_channels"), ("3: websockets", "03_websockets")]
    rows = [
        "| chapter | glue | lines (code) | workarounds | lines (code) |",
        "| --- | --- | ---: | --- | ---: |",
    ]
    for title, folder in chapters:
        files = [
            path
            for path in sorted((ROOT / folder).rglob("*.py"))
            if not path.name.startswith("test_")
            and path.name not in ("bench.py", "naive.py", "conftest.py")
            and path.stat().st_size
        ]
        fixes = [path for path in files if path.relative_to(ROOT / folder).as_posix() in WORKAROUNDS[folder]]
        glue = [path for path in files if path not in fixes]
        rows.append(
            f"| {title} | {names(glue, folder)} | {counted(glue)} | {names(fixes, folder)} | {counted(fixes)} |"
        )
    return rows


def names(files: list[Path], folder: str) -> str:
    return ", ".join(f"`{path.relative_to(ROOT / folder).as_posix()}`" for path in files)


def counted(files: list[Path]) -> str:
    """Lines in all, and (in brackets) lines of code."""
    lines = [line for path in files for line in path.read_text().splitlines()]
    return f"{len(lines)} ({sum(1 for _ in code_lines(lines))})"


def code_lines(lines: list[str]) -> Iterator[str]:
    """Lines that are not blank, not comments and not docstrings (a docstring is a line-leading triple quote)."""
    in_docstring = False
    for line in lines:
        text = line.strip()
        if in_docstring:
            in_docstring = '"""' not in text
            continue
        if text.startswith('"""'):
            in_docstring = text.count('"""') == 1
            continue
        if text and not text.startswith("#"):
            yield line


def drill_results() -> list[str]:
    """Chapter 4's drill, from its committed reports (04_deploy/results/drill.json), in drill.py's own table."""
    sys.path.insert(0, str(ROOT / "04_deploy"))  # drill.py imports deploy.py, its neighbour: scripts of that folder
    drill = importlib.import_module("drill")
    run, reports = drill.load()
    return [
        f"{run['date']}, {run['cores']} cores, everything on one machine: {run['workers']} processes, "
        f"{run['members']} members writing {run['rate']:g} messages a second each, a process every {run['between']} "
        "messages (`make deploy-drill SAVE=1`).",
        "",
        *drill.table(reports),
    ]


GENERATORS: dict[str, Callable[[], list[str]]] = {
    "glue-lines": glue_lines,
    "drill": drill_results,
    **AUTOBAHN_BLOCKS,
}


def blocks(doc: Path) -> Iterator[tuple[str, int, int]]:
    """(name, first line, end marker's line) of every generated block."""
    lines = doc.read_text().split("\n")
    for i, text in outside_code(lines):
        match = BEGIN_RE.match(text)
        if match is None:
            continue
        name = match["name"]
        end = next((j for j in range(i + 1, len(lines)) if lines[j] == f"<!-- end: {name} -->"), None)
        if name not in GENERATORS or end is None:
            raise SystemExit(f"{doc.relative_to(ROOT)}:{i + 1}: unknown block {name!r}, or no end marker")
        yield name, i + 1, end


def check() -> list[str]:
    """Every stale excerpt and block, as 'doc:line: problem'."""
    problems = []
    for doc in documents():
        for excerpt in excerpts(doc):
            problem = excerpt.problem()
            if problem:
                problems.append(f"{excerpt.where}: {problem}")
        lines = doc.read_text().split("\n")
        for name, first, end in blocks(doc):
            if lines[first:end] != GENERATORS[name]():
                problems.append(f"{doc.relative_to(ROOT)}:{first}: the {name} block is out of date")
    return problems


def fix() -> list[str]:
    """Fix what can be fixed; return what can't."""
    return [problem for doc in documents() for problem in fix_doc(doc)]


def fix_doc(doc: Path) -> list[str]:
    """Fix one document's excerpts and blocks as far as possible; return what can't be fixed."""
    left = []
    lines = doc.read_text().split("\n")
    for excerpt in excerpts(doc):
        if excerpt.problem() is None:
            continue
        found = excerpt.relocate()
        if found is None:
            left.append(f"{excerpt.where}: {excerpt.problem()}; edit the excerpt by hand")
            continue
        lines[excerpt.line] = caption(doc, excerpt.path, *found)
    for name, first, end in reversed(list(blocks(doc))):
        lines[first:end] = GENERATORS[name]()
    text = "\n".join(lines)
    if text != doc.read_text():
        doc.write_text(text)
    return left


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fix", action="store_true", help="point moved excerpts at their lines, regenerate blocks")
    args = parser.parse_args()
    problems = fix() if args.fix else check()
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems and not args.fix:
        print("Run `make docs` to fix what can be fixed.", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
