"""The chat page in Chromium through the proxy, over https:// and wss://, while a process restarts (SPEC.md §14)."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from deploy import Deployment, deployed
from tests.harness import STOP_TIMEOUT
from tests.implementations import IMPLEMENTATIONS
from tests.test_02_page import ChatPage, chromium

pytestmark = pytest.mark.timeout(120)

# What the page's state and outbox went through, kept by the page itself from the moment this runs
WATCH = """() => {
  window.seen = {states: [], outbox: 0};
  new MutationObserver(() => window.seen.states.push(document.querySelector('#state').dataset.state))
    .observe(document.querySelector('#state'), {attributes: true, attributeFilter: ['data-state']});
  new MutationObserver(() => {
    window.seen.outbox = Math.max(window.seen.outbox, document.querySelector('#outbox').children.length);
  }).observe(document.querySelector('#outbox'), {childList: true});
}"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from chromium()


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def deployment(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Deployment]:
    """Two processes of a chapter on one Redis, behind HAProxy."""
    with deployed(IMPLEMENTATIONS[request.param], 2, tmp_path) as running:
        yield running


def test_page_through_the_proxy(browser: Browser, deployment: Deployment) -> None:
    """§2.1, §14 behind the proxy: two pages chat over wss://; Alice's process is restarted (SIGTERM: 1001); her
    page shows it, keeps what she types meanwhile in its outbox, reconnects by itself (to the other process), and
    sends it: both pages end with every message once, in order."""
    alice = ChatPage(browser, f"{deployment.url}/", ignore_https_errors=True)
    bob = ChatPage(browser, f"{deployment.url}/", ignore_https_errors=True)
    try:
        alice.join("alice", "lobby")
        (restarted,) = [worker for worker in deployment.workers if "/ws/chat/lobby" in worker.log()]
        bob.join("bob", "lobby")  # on the other process: the proxy balances open connections
        for text in ("before 0", "before 1"):
            alice.say(text)
        bob.say("hi alice")
        for page in (alice, bob):
            page.wait_for_messages(3)
        alice.page.evaluate(WATCH)
        restarted.signal(signal.SIGTERM)
        alice.wait_for_state("reconnecting")
        assert alice.page.locator("#state").inner_text().startswith("The server is restarting.")
        typed = ["during 0", "during 1"]
        for text in typed:
            alice.say(text)  # into the outbox, until the page is connected again
        restarted.wait(STOP_TIMEOUT)
        restarted.start()
        alice.wait_for_state("open")
        for page in (alice, bob):
            page.wait_for_messages(5)
        alice.page.wait_for_function("() => document.querySelector('#outbox').children.length === 0")
        seen = alice.page.evaluate("window.seen")
        assert seen["outbox"] >= 1 and seen["states"][0] == "reconnecting" and seen["states"][-1] == "open", seen
        listed = alice.messages()
        assert listed == bob.messages()
        assert [message.seq for message in listed] == [1, 2, 3, 4, 5], "each message once, in order, no gap"
        assert [m.text for m in listed if m.user == "alice"] == ["before 0", "before 1", *typed]
        for page in (alice, bob):
            assert page.notices() == [] and page.errors == []
    finally:
        alice.context.close()
        bob.context.close()
