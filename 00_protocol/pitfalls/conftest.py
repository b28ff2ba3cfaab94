"""The pitfalls' fixtures: the servers, the people in the tests' rooms, and the table `make pitfalls` prints."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Iterator

import pytest
from members import People
from pitfall_servers import CHAPTERS, GALLERIES, NAIVE, PITFALLS, Servers


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    """Every server of the pitfalls, started side by side before the first test that needs one."""
    running = Servers(tmp_path_factory.mktemp("pitfall-logs"))
    try:
        running.get(*NAIVE, *GALLERIES, *CHAPTERS)
        yield running
    finally:
        running.stop()


@pytest.fixture
async def people() -> AsyncIterator[People]:
    """The people a test lets into rooms: gone after it, whatever happened."""
    joined = People()
    yield joined
    for member in joined.members:
        await member.close()


OUTCOMES = pytest.StashKey[dict[int, dict[str, str]]]()


@pytest.fixture
def record(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """``record[label] = "what it did"``: a row of the table of the pitfall the test is marked with."""
    rows: dict[str, str] = {}
    yield rows
    marker = request.node.get_closest_marker("pitfall")
    assert marker is not None, "mark the test with the pitfall it shows: @pytest.mark.pitfall(n)"
    if OUTCOMES not in request.config.stash:
        outcomes: dict[int, dict[str, str]] = defaultdict(dict)
        request.config.stash[OUTCOMES] = outcomes
    request.config.stash[OUTCOMES][marker.args[0]].update(rows)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "pitfall(n): the test shows pitfall n of 00_protocol/pitfalls/README.md")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    outcomes = config.stash.get(OUTCOMES, {})
    if not outcomes:
        return
    terminalreporter.section("pitfalls: what the naive code did, and what each chapter does")
    width = max((len(label) for rows in outcomes.values() for label in rows), default=0)
    for number in sorted(number for number, rows in outcomes.items() if rows):
        terminalreporter.write_line(f"{number}. {PITFALLS[number]}")
        for label, outcome in outcomes[number].items():
            terminalreporter.write_line(f"   {label:<{width}}  {outcome}")
