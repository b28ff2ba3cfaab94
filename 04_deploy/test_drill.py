"""The drill, small, for every chapter behind each proxy: a rolling restart loses nothing (SPEC.md §9, §14, §17)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from deploy import PROXIES, Deployment, deployed
from drill import MODES, Drill
from tests.implementations import IMPLEMENTATIONS

MEMBERS, RATE, BETWEEN = 4, 5.0, 20  # four members, 20 messages a second in all, a restart each second


@pytest.fixture(
    scope="module", params=[(proxy, impl) for proxy in PROXIES for impl in sorted(IMPLEMENTATIONS)], ids="-".join
)
def deployment(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """Two processes of a chapter on one Redis behind a proxy, for both drills (each in a room of its own)."""
    proxy, impl = request.param
    with deployed(IMPLEMENTATIONS[impl], 2, tmp_path_factory.mktemp("drill"), proxy=proxy) as running:
        yield running


@pytest.mark.parametrize("mode", MODES)
async def test_drill(deployment: Deployment, mode: str) -> None:
    """§9, §14, §17: each process in turn is stopped (SIGTERM: 1001) or killed (SIGKILL) and started again while
    members chat through the proxy; every message written is acked and reaches every member once, in order."""
    report = await Drill(deployment, members=MEMBERS, rate=RATE, mode=mode, between=BETWEEN).run()
    assert report.reconnects >= len(deployment.workers), report  # the members did lose their connections
    assert (report.lost, report.duplicated, report.reordered, report.not_resumed) == (0, 0, 0, 0), report
    assert report.sent == report.acked == report.delivered > 0, report
    assert report.errors == 0, report
