"""The course's Markdown: excerpts equal to the code on disk, generated tables current, links that resolve."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from docs.autobahn.tables import BLOCKS as AUTOBAHN_BLOCKS
from docs.autobahn.tables import explain, load
from docs.snippets import GENERATORS, ROOT, Excerpt, blocks, documents, excerpts, outside_code

EXCERPTS = [excerpt for doc in documents() for excerpt in excerpts(doc)]
CHAPTERS = ["01_fastapi", "02_channels", "03_websockets"]
HEADINGS = ["## Run it", "## How it works", "## Differences from chapter 1", "## Exercises"]
LINK_RE = re.compile(r"\]\((?P<target>[^)\s]+)\)")


@pytest.mark.parametrize("excerpt", EXCERPTS, ids=[excerpt.where for excerpt in EXCERPTS])
def test_excerpt_is_the_code_on_disk(excerpt: Excerpt) -> None:
    """Every excerpt shows exactly the lines its caption names (`make docs` fixes moved ones)."""
    assert excerpt.problem() is None, f"{excerpt.where}: {excerpt.problem()}; run `make docs`"


def test_the_chapters_have_excerpts() -> None:
    """Each chapter's README and chapter 0's tour show their code (so the test above has something to check)."""
    docs = {excerpt.doc.parent.name for excerpt in EXCERPTS}
    assert {"00_protocol", *CHAPTERS} <= docs


def test_a_stale_excerpt_is_caught() -> None:
    """An excerpt whose code changed is reported; one whose code moved is found at its new lines."""
    doc = ROOT / "01_fastapi" / "README.md"
    lines = (ROOT / "01_fastapi" / "server.py").read_text().splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("async def read_frames")) + 1
    href = f"server.py#L{first}-L{first + 2}"
    code = lines[first - 1 : first + 2]
    assert Excerpt(doc, 0, "01_fastapi/server.py", first, first + 2, href, code).problem() is None
    changed = Excerpt(doc, 0, "01_fastapi/server.py", first, first + 2, href, [*code[:2], "    changed"])
    assert changed.problem() == f"the code differs from 01_fastapi/server.py, lines {first}-{first + 2}"
    assert changed.relocate() is None
    moved = Excerpt(doc, 0, "01_fastapi/server.py", first + 1, first + 3, f"server.py#L{first + 1}-L{first + 3}", code)
    assert moved.problem() is not None
    assert moved.relocate() == (first, first + 2)


def test_generated_blocks_are_current() -> None:
    """Generated tables (lines of glue code) are what their generator makes of the code on disk."""
    found = 0
    for doc in documents():
        lines = doc.read_text().split("\n")
        for name, first, end in blocks(doc):
            found += 1
            assert lines[first:end] == GENERATORS[name](), f"{doc.relative_to(ROOT)}: {name} is stale; run `make docs`"
    assert found, "no generated block found"


def test_autobahn_page_explains_every_result() -> None:
    """Every Autobahn case that is not OK falls under a cause, and docs/autobahn.md has every cause's block."""
    _, unexplained = explain(load())
    assert not unexplained, f"add a cause to docs/autobahn/tables.py for {[case['id'] for _, _, case in unexplained]}"
    missing = set(AUTOBAHN_BLOCKS) - {name for name, _, _ in blocks(ROOT / "docs" / "autobahn.md")}
    assert not missing, f"docs/autobahn.md has no block {sorted(missing)}"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_readme_headings(chapter: str) -> None:
    """Every chapter's README has the shared headings, in order."""
    headings = [line for line in (ROOT / chapter / "README.md").read_text().splitlines() if line.startswith("## ")]
    assert [h for h in headings if h in HEADINGS] == HEADINGS


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip("# ").lower()).replace(" ", "-")


def prose(doc: Path) -> list[str]:
    """The doc's lines outside code blocks (where a "#" line is a heading, and links are links)."""
    return [line for _, line in outside_code(doc.read_text().split("\n"))]


def anchors(doc: Path) -> set[str]:
    return {slug(line) for line in prose(doc) if line.startswith("#")}


@pytest.mark.parametrize("doc", list(documents()), ids=lambda doc: str(doc.relative_to(ROOT)))
def test_links_resolve(doc: Path) -> None:
    """Every relative link in the course's Markdown names a file that exists (and a heading that exists)."""
    broken = []
    for match in LINK_RE.finditer("\n".join(prose(doc))):
        target = match["target"]
        if re.match(r"[a-z]+:", target):
            continue  # http:, https:, mailto:
        path, _, anchor = target.partition("#")
        file = (doc.parent / path).resolve() if path else doc
        heading = anchor and not anchor.startswith("L") and file.suffix == ".md"
        if not file.exists() or (heading and anchor not in anchors(file)):
            broken.append(target)
    assert not broken, f"{doc.relative_to(ROOT)}: broken links {broken}"
