"""SPEC.md §2.1: the chat page and the shared client, in a real Chromium, against each implementation."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests import machine
from tests.conftest import MakeServer
from tests.harness import REPO, Server, ServerProcess
from tests.redis_server import RedisServer

ARTIFACTS = REPO / "test-artifacts"
WAIT = 30_000  # ms: the longest wait for anything a page shows (a reconnect after an outage takes a few s)
PHONE = {"width": 390, "height": 740}

pytestmark = pytest.mark.timeout(180)


class Message(NamedTuple):
    """One message as a page lists it."""

    epoch: str
    seq: int
    user: str
    text: str
    id: str


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from chromium()


def chromium() -> Iterator[Browser]:
    """The machine's Chromium, launched by Playwright (make install finds or installs it: tests/machine.py)."""
    try:
        executable = machine.browser()  # CHROMIUM, or the one make install found or installed
    except machine.BrowserNotFound as exc:
        pytest.fail(str(exc), pytrace=False)
    args = ["--disable-gpu", "--disable-quic", "--disable-background-networking", "--disable-component-update"]
    if os.geteuid() == 0:
        args.append("--no-sandbox")  # Chromium's sandbox refuses to run as root
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=args)
        yield browser
        browser.close()


class ChatPage:
    """One person at the chat page, in a browser context of their own (their own cookie), using the keyboard."""

    def __init__(
        self, browser: Browser, url: str, viewport: dict[str, int] | None = None, *, ignore_https_errors: bool = False
    ) -> None:
        """``ignore_https_errors``: trust any certificate (chapter 4's, made for the run by its own authority)."""
        self.context = browser.new_context(viewport=viewport, ignore_https_errors=ignore_https_errors)  # type: ignore[arg-type]
        self.page: Page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))  # an uncaught exception
        self.page.goto(url)

    def join(self, user: str, room: str) -> None:
        """Type the name (the field has the focus), Tab, the room, Enter."""
        self.page.locator("#user:focus").wait_for(timeout=WAIT)
        keyboard = self.page.keyboard
        keyboard.type(user)
        keyboard.press("Tab")
        keyboard.press("Control+A")
        keyboard.type(room)
        keyboard.press("Enter")
        self.wait_for_state("open")

    def say(self, text: str) -> None:
        """Type into the message field (it has the focus once joined) and press Enter."""
        self.page.keyboard.type(text)
        self.page.keyboard.press("Enter")

    def state(self) -> str:
        return self.page.locator("#state").get_attribute("data-state") or ""

    def wait_for_state(self, state: str) -> None:
        self.page.locator(f'#state[data-state="{state}"]').wait_for(timeout=WAIT)

    def wait_for_messages(self, count: int) -> None:
        try:
            self.page.wait_for_function(
                "count => document.querySelectorAll('#messages li.message').length >= count", arg=count, timeout=WAIT
            )
        except PlaywrightTimeoutError:
            shown = [message.text for message in self.messages()]
            raise AssertionError(
                f"{count} messages expected within {WAIT / 1000} s; the page shows {len(shown)}: {shown}, "
                f"outbox {self.outbox_texts()}, state {self.state()!r}"
            ) from None

    def messages(self) -> list[Message]:
        items = self.page.eval_on_selector_all(
            "#messages li.message",
            "items => items.map(li => [li.dataset.epoch, Number(li.dataset.seq),"
            " li.querySelector('.user').textContent, li.querySelector('.text').textContent, li.dataset.id])",
        )
        return [Message(str(epoch), int(seq), str(user), str(text), str(id_)) for epoch, seq, user, text, id_ in items]

    def outbox(self) -> list[str]:
        return self.texts("#outbox li", "li.dataset.id")

    def outbox_texts(self) -> list[str]:
        return self.texts("#outbox li", "li.textContent")

    def outbox_ids(self) -> dict[str, str]:
        """What waits in the outbox: text -> the id the client gave it."""
        return dict(zip(self.texts("#outbox li", "li.firstChild.textContent"), self.outbox(), strict=True))

    def notices(self) -> list[str]:
        return self.texts("#messages li.notice", "li.textContent")

    def texts(self, selector: str, expression: str) -> list[str]:
        """``expression`` (of ``li``) for each element matching ``selector``."""
        return [
            str(text) for text in self.page.eval_on_selector_all(selector, f"items => items.map(li => {expression})")
        ]

    def members(self) -> str:
        return self.page.locator("#members").inner_text()

    def screenshot(self, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        self.page.screenshot(path=ARTIFACTS / name, full_page=True)


OpenPage = Callable[..., ChatPage]


@pytest.fixture
def open_page(browser: Browser) -> Iterator[OpenPage]:
    """``open_page(url, viewport=None)``: a page of its own browser context, closed after the test."""
    pages: list[ChatPage] = []

    def open_(url: str, viewport: dict[str, int] | None = None) -> ChatPage:
        pages.append(ChatPage(browser, url, viewport))
        return pages[-1]

    yield open_
    for page in pages:
        page.context.close()


def chat_before_and_after(
    name: str, server: ServerProcess, open_page: OpenPage, room: str, *, kill_while_typing: bool
) -> tuple[ChatPage, ChatPage, list[str]]:
    """Alice (desktop) and Bob (phone-sized) chat; the server is killed and restarted while Alice keeps typing.
    Returns both pages once each shows every message, and what Alice typed, in order. Screenshots go to
    test-artifacts/page-<name>-*.png."""
    alice = open_page(server.url + "/")
    bob = open_page(server.url + "/", PHONE)
    alice.join("alice", room)
    bob.join("bob", room)
    alice.page.wait_for_function("() => document.querySelector('#members').textContent === 'alice, bob'", timeout=WAIT)
    assert bob.members() == "alice, bob"
    typed = [f"before {i}" for i in range(5)]
    for text in typed:
        alice.say(text)
    bob.say("hi alice")
    if not kill_while_typing:  # an in-memory server loses its history: wait until everyone has everything
        alice.wait_for_messages(6)
        bob.wait_for_messages(6)
    server.kill()
    during = [f"during {i}" for i in range(5)]
    for text in during[:2]:
        alice.say(text)  # may be written to the dead socket before the page notices: resent later
    alice.wait_for_state("reconnecting")  # the page shows the outage, with its countdown
    assert "Reconnecting in" in alice.page.locator("#state").inner_text()
    for text in during[2:]:
        alice.say(text)  # queued while offline
    waiting = alice.outbox_ids()
    assert set(during[2:]) <= set(waiting), "messages typed while offline wait in the outbox"
    alice.screenshot(f"page-{name}-outage.png")
    server.start()  # the same port: the pages reconnect by themselves, and Alice's page sends what waited
    alice.wait_for_state("open")
    bob.wait_for_state("open")
    for page in (alice, bob):
        page.wait_for_messages(len(typed) + 1 + len(during))
    assert alice.outbox() == []
    after = [f"after {i}" for i in range(3)]
    for text in after:
        alice.say(text)
    typed += during + after
    for page in (alice, bob):
        page.wait_for_messages(len(typed) + 1)
    alice.page.wait_for_function("() => document.querySelector('#outbox').children.length === 0", timeout=WAIT)
    alice.screenshot(f"page-{name}-alice.png")
    bob.screenshot(f"page-{name}-bob-phone.png")
    delivered = {message.text: message.id for message in alice.messages()}
    assert {text: delivered[text] for text in waiting} == waiting, "resent with the ids they were given"
    return alice, bob, typed


def test_page_survives_a_restart_that_loses_history(
    impl: str, make_server: MakeServer, open_page: OpenPage, room: str
) -> None:
    """§2.1, §9: two pages chat; the in-memory server is killed and restarted (a new epoch) while one page keeps
    typing: it shows the outage, reconnects by itself, and both pages end with the same list, each message once,
    with a notice that history may have a hole."""
    server = make_server(fresh=True)
    assert isinstance(server, ServerProcess)
    alice, bob, typed = chat_before_and_after(f"{impl}-restart", server, open_page, room, kill_while_typing=False)
    listed = alice.messages()
    assert listed == bob.messages()
    assert len(set(listed)) == len(listed), "a message shown twice"
    epochs = list(dict.fromkeys(message.epoch for message in listed))
    assert len(epochs) == 2, "the restarted server's history has a new epoch"
    assert [message.text for message in listed if message.user == "alice"] == typed
    for page in (alice, bob):
        assert [message.seq for message in listed if message.epoch == epochs[1]] == list(range(1, 9))
        assert len(page.notices()) == 1 and "may be missing" in page.notices()[0]
        assert page.errors == []
    # Bob's phone-sized window shows the chat without sideways scrolling, the message field in view.
    assert bob.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert bob.page.evaluate("document.querySelector('#text').getBoundingClientRect().bottom <= window.innerHeight")


def test_page_loses_nothing_when_the_server_dies_mid_typing(
    impl: str, make_server: MakeServer, open_page: OpenPage, room: str, tmp_path: Path
) -> None:
    """§2.1, §8, §17: with history in a persistent Redis, the server is killed while a page is typing: the page
    resends what was not acked, with the same ids, resumes, and both pages end with every message once, in the
    order typed, with no notice of a hole."""
    redis = RedisServer(tmp_path, persistent=True)
    redis.start()
    server: Server | None = None
    try:
        server = make_server({"CHAT_REDIS_URL": redis.url}, fresh=True)
        assert isinstance(server, ServerProcess)
        alice, bob, typed = chat_before_and_after(f"{impl}-redis", server, open_page, room, kill_while_typing=True)
        listed = alice.messages()
        assert listed == bob.messages()
        assert [message.seq for message in listed] == list(range(1, len(typed) + 2)), "each message once, no gap"
        assert [message.text for message in listed if message.user == "alice"] == typed
        for page in (alice, bob):
            assert page.notices() == []
            assert page.errors == []
    finally:
        if isinstance(server, ServerProcess):
            server.stop()  # before Redis, so that it has nothing to complain about
        redis.kill()
