"""The drill, small, for every chapter behind the proxies: a rolling restart loses nothing (SPEC.md §9, §14, §17)."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from deploy import Deployment, deployed
from drill import MODES, Drill, Member
from tests.implementations import IMPLEMENTATIONS

MEMBERS, RATE, BETWEEN = 4, 5.0, 20  # four members, 20 messages a second in all, a restart each second
# Every chapter behind HAProxy, both ways; behind nginx, SIGTERM only (each step waits out its 2 s fail_timeout,
# and `make test` has 15 minutes: `make deploy-drill` runs them all)
CASES = [
    *(("haproxy", impl, mode) for impl in sorted(IMPLEMENTATIONS) for mode in MODES),
    *(("nginx", impl, "restart") for impl in sorted(IMPLEMENTATIONS)),
]


@pytest.fixture(scope="module")
def deployment(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """Two processes of a chapter on one Redis behind a proxy, for its drills (each in a room of its own)."""
    proxy, impl = request.param
    with deployed(IMPLEMENTATIONS[impl], 2, tmp_path_factory.mktemp("drill"), proxy=proxy) as running:
        yield running


@pytest.mark.parametrize(
    ("deployment", "mode"),
    [((proxy, impl), mode) for proxy, impl, mode in CASES],
    ids=[f"{proxy}-{impl}-{mode}" for proxy, impl, mode in CASES],
    indirect=["deployment"],
)
async def test_drill(deployment: Deployment, mode: str) -> None:
    """§9, §14, §17: each process in turn is stopped (SIGTERM: 1001) or killed (SIGKILL) and started again while
    members chat through the proxy; every message written is acked and reaches every member once, in order."""
    report = await Drill(deployment, members=MEMBERS, rate=RATE, mode=mode, between=BETWEEN).run()
    assert report.reconnects >= len(deployment.workers), report  # the members did lose their connections
    assert (report.lost, report.duplicated, report.reordered, report.not_resumed) == (0, 0, 0, 0), report
    assert report.sent == report.acked == report.delivered > 0, report
    assert report.errors == 0, report


def received(*messages: tuple[int, str]) -> list[tuple[int, str, float]]:
    return [(seq, msg_id, 0.1 * n) for n, (seq, msg_id) in enumerate(messages, 1)]


@pytest.mark.parametrize(
    ("second", "counts"),
    [
        (received((1, "a-0"), (2, "a-1")), (0, 0, 0)),
        (received((1, "a-0")), (1, 0, 0)),  # a message missing
        (received((1, "a-0"), (1, "a-0"), (2, "a-1")), (0, 1, 0)),  # a seq twice
        (received((2, "a-1"), (1, "a-0")), (0, 0, 1)),  # out of order
        (received((1, "a-0"), (2, "a-1"), (3, "a-1")), (0, 1, 0)),  # a message committed twice
    ],
    ids=["clean", "lost", "duplicated", "reordered", "committed-twice"],
)
def test_the_drill_counts(second: list[tuple[int, str, float]], counts: tuple[int, int, int]) -> None:
    """The drill's report finds what it is there to find: two members, the first writes two messages and
    receives them; what the second receives is lost, duplicated or reordered."""
    deployment: Any = SimpleNamespace(impl=SimpleNamespace(name="fastapi"), proxy="haproxy", workers=[None, None])
    drill = Drill(deployment, members=2, rate=1.0, mode="restart", between=1)
    for user, messages in (("a", received((1, "a-0"), (2, "a-1"))), ("b", second)):
        member = Member(deployment, drill.room, user, "token", drill.progress)
        member.received = messages
        drill.members.append(member)
    drill.members[0].written = {"a-0": 0.0, "a-1": 0.0}
    report = drill.report(start=0.0, end=1.0)
    assert (report.lost, report.duplicated, report.reordered) == counts
    assert report.clean() == (counts == (0, 0, 0))
